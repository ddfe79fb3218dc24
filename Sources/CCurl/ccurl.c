#include "ccurl.h"

#include <stdlib.h>
#include <string.h>

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode ccurl_trust_only_ca(CURL *handle, const char *ca_path) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_CAINFO, ca_path);
    // Only the cluster's CA: no system directory of CAs beside it.
    if (code == CURLE_OK) code = curl_easy_setopt(handle, CURLOPT_CAPATH, (char *)NULL);
    if (code == CURLE_OK) code = curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 1L);
    if (code == CURLE_OK) code = curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 2L);
    return code;
}

CURLcode ccurl_set_error_buffer(CURL *handle, char *buffer) {
    buffer[0] = '\0';
    return curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, buffer);
}

CURLcode ccurl_setopt_write_function(CURL *handle, ccurl_write_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

void ccurl_buffer_init(ccurl_buffer *buffer, size_t limit) {
    buffer->data = NULL;
    buffer->length = 0;
    buffer->capacity = 0;
    buffer->limit = limit;
    buffer->overflowed = 0;
}

void ccurl_buffer_free(ccurl_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = 0;
    buffer->capacity = 0;
}

static size_t ccurl_buffer_write(char *data, size_t size, size_t count, void *userdata) {
    ccurl_buffer *buffer = (ccurl_buffer *)userdata;
    size_t bytes = size * count;
    if (bytes == 0) return 0;
    if (buffer->length + bytes > buffer->limit) {
        buffer->overflowed = 1;
        return 0; // a short write makes libcurl abort the transfer with CURLE_WRITE_ERROR
    }
    if (buffer->length + bytes > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < buffer->length + bytes) capacity *= 2;
        char *grown = realloc(buffer->data, capacity);
        if (!grown) return 0;
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->length, data, bytes);
    buffer->length += bytes;
    return bytes;
}

CURLcode ccurl_collect_body(CURL *handle, ccurl_buffer *buffer) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, ccurl_buffer_write);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_WRITEDATA, (void *)buffer);
}
