print("mmctl: not written yet (issue 7)")
