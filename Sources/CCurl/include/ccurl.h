#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>
#include <stddef.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call. These
// typed, non-variadic wrappers are the whole bridge; everything else stays in Swift.

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ccurl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);
/// For the CURLINFO_*_T infos (times in microseconds, sizes): mmbench's handshake timing.
CURLcode ccurl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

/// Verify https peers against the CA certificates in `ca_path` only (CURLOPT_CAINFO, with the
/// system's CA directory turned off), checking the chain (CURLOPT_SSL_VERIFYPEER) and that
/// the certificate names the URL's host or IP address (CURLOPT_SSL_VERIFYHOST = 2). Plain
/// http URLs are unaffected.
CURLcode ccurl_trust_only_ca(CURL *handle, const char *ca_path);

/// Where libcurl writes the detailed message of a failure (CURLOPT_ERRORBUFFER); `buffer`
/// must hold CURL_ERROR_SIZE bytes and outlive the transfer.
CURLcode ccurl_set_error_buffer(CURL *handle, char *buffer);

typedef size_t (*ccurl_write_callback)(char *data, size_t size, size_t count, void *userdata);
CURLcode ccurl_setopt_write_function(CURL *handle, ccurl_write_callback callback);

/// A growable byte buffer the response body is collected into, with a hard limit so a
/// misbehaving server cannot make the client buffer without bound.
typedef struct ccurl_buffer {
    char *data;
    size_t length;
    size_t capacity;
    size_t limit;
    int overflowed;
} ccurl_buffer;

void ccurl_buffer_init(ccurl_buffer *buffer, size_t limit);
void ccurl_buffer_free(ccurl_buffer *buffer);

/// Installs the write callback that appends to `buffer` (CURLOPT_WRITEFUNCTION + WRITEDATA).
CURLcode ccurl_collect_body(CURL *handle, ccurl_buffer *buffer);

#endif
