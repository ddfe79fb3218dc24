import Foundation
import MMCommandLine
import MMCore
import Synchronization

/// `status --watch` on a terminal: the alternate screen, one full-frame write per redraw
/// (cursor home, each line then clear-to-end-of-line, then clear-below), so nothing
/// flickers and the shell's screen comes back unchanged on exit. q, Q or Ctrl-C quits;
/// a window resize redraws at once.
struct WatchScreen {
    let snapshot: @Sendable () async -> ClusterSnapshot
    let renderer: StatusRenderer
    let intervalMs: Int64
    /// Without an explicit `--limit`: as many symbol rows as the terminal has room for, so
    /// the fills and events below stay on screen at 1,000 symbols.
    var fitSymbolsToScreen = false

    static let enterAlternateScreen = "\u{1b}[?1049h\u{1b}[?25l"
    static let leaveAlternateScreen = "\u{1b}[?25h\u{1b}[?1049l"

    func run() async -> Int32 {
        let events = TerminalEvents()
        let terminal = RawTerminal()
        terminal?.enable()
        writeRaw(Self.enterAlternateScreen)
        defer {
            writeRaw(Self.leaveAlternateScreen)
            terminal?.restore()
        }
        var shown: ClusterSnapshot?
        var last = ExitStatus.ok
        while !events.quit {
            let snapshot = await self.snapshot()
            last = Status.exitCode(snapshot)
            draw(snapshot, previous: shown)
            await events.wait(ms: intervalMs)
            if events.takeResize() { draw(snapshot, previous: shown) }
            shown = snapshot
        }
        return last
    }

    private func draw(_ snapshot: ClusterSnapshot, previous: ClusterSnapshot?) {
        let (rows, columns) = terminalSize()
        var renderer = self.renderer
        if fitSymbolsToScreen {
            // The frame's height with a single symbol row tells what everything else takes.
            var probe = renderer
            probe.symbolLimit = 1
            let others = probe.render(snapshot, previous: previous).count - 1
            let room = rows - 1 - others
            // (`others` counts the "… more" lines a cut adds, which all rows fitting drops.)
            renderer.symbolLimit = snapshot.symbols.count <= room + 2 ? nil : max(3, room)
        }
        var lines = renderer.render(snapshot, previous: previous)
        let footer = "q quits · every \(duration(intervalMs)) · * changed since the last frame"
        if lines.count > rows - 1 { lines = Array(lines.prefix(max(1, rows - 1))) }
        lines.append(footer)
        var frame = "\u{1b}[H"
        for (index, line) in lines.enumerated() {
            frame += truncateVisible(line, to: columns) + "\u{1b}[K"
            if index < lines.count - 1 { frame += "\r\n" }
        }
        frame += "\u{1b}[J"
        writeRaw(frame)
    }

    private func terminalSize() -> (Int, Int) {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 {
            return (Int(size.ws_row), Int(size.ws_col))
        }
        return (50, 160)
    }
}

/// mmctl's names for the shared terminal text helpers (MMCommandLine.TerminalText).
func duration(_ ms: Int64) -> String { TerminalText.duration(ms) }
func visibleCount(_ text: String) -> Int { TerminalText.visibleCount(text) }
func truncateVisible(_ text: String, to width: Int) -> String { TerminalText.truncate(text, to: width) }

func writeRaw(_ text: String) {
    var data = Array(text.utf8)
    var offset = 0
    while offset < data.count {
        let written = data.withUnsafeMutableBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
        if written <= 0 {
            if written < 0 && errno == EINTR { continue }
            return
        }
        offset += written
    }
    data.removeAll()
}

/// Keys (read by a thread blocking on stdin) and signals, as flags the redraw loop checks.
final class TerminalEvents {
    private let quitFlag = LockedFlag()
    private let resizeFlag = LockedFlagResettable()
    private let sources: [any DispatchSourceSignal]

    init() {
        let quit = quitFlag
        let resize = resizeFlag
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { quit.set() }
            source.resume()
            sources.append(source)
        }
        signal(SIGWINCH, SIG_IGN)
        let winch = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
        winch.setEventHandler { resize.set() }
        winch.resume()
        sources.append(winch)
        self.sources = sources
        if isatty(STDIN_FILENO) == 1 {
            let reader = Thread {
                var byte: UInt8 = 0
                while true {
                    let count = read(STDIN_FILENO, &byte, 1)
                    if count <= 0 { if count < 0 && errno == EINTR { continue }; break }
                    // q, Q, Ctrl-C (when ISIG is off), Ctrl-D
                    if byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3 || byte == 4 {
                        quit.set()
                        break
                    }
                }
            }
            reader.start()
        }
    }

    var quit: Bool { quitFlag.isSet }

    func takeResize() -> Bool { resizeFlag.take() }

    func wait(ms: Int64) async {
        let deadline = ContinuousClock.now + .milliseconds(ms)
        while !quit && ContinuousClock.now < deadline && !resizeFlag.isSet {
            try? await Task.sleep(for: min(.milliseconds(30), deadline - ContinuousClock.now))
        }
    }
}

/// Non-canonical, no-echo input so a single `q` arrives without Enter; restored on exit.
final class RawTerminal: Sendable {
    private let saved: termios

    init?() {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        var current = termios()
        guard tcgetattr(STDIN_FILENO, &current) == 0 else { return nil }
        saved = current
    }

    func enable() {
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        withUnsafeMutableBytes(of: &raw.c_cc) { bytes in
            bytes[Int(VMIN)] = 1
            bytes[Int(VTIME)] = 0
        }
        var copy = raw
        tcsetattr(STDIN_FILENO, TCSANOW, &copy)
    }

    func restore() {
        var copy = saved
        tcsetattr(STDIN_FILENO, TCSANOW, &copy)
    }
}

final class LockedFlagResettable: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
    func take() -> Bool { value.withLock { current in defer { current = false }; return current } }
}
