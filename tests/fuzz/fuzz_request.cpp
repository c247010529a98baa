// libFuzzer target: arbitrary bytes as the body of a server request, parsed as JSON and then as
// a chat completion, a completion, a /tokenize and a /detokenize request. Only HttpError may
// come out (every bad request is a 4xx); any other exception (a JSON type error would be a 500),
// crash, hang or sanitizer report is a bug. Seeds: tests/fuzz/corpus/request.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace bitnet::server;
    const std::string body(reinterpret_cast<const char*>(data), size);
    bitnet::Json j;
    try {
        j = parse_body(body);
    } catch (const HttpError&) {
        return 0;
    }
    const bitnet::SamplingOptions defaults;
    for (bool chat : {true, false}) {
        try {
            const CompletionParams p = parse_completion(j, chat, defaults);
            (void)dump_json(bitnet::Json(p.stop));
        } catch (const HttpError& e) {
            (void)dump_json(error_body(e));
        }
    }
    try {
        (void)parse_tokenize(j);
    } catch (const HttpError&) {
    }
    try {
        (void)parse_detokenize(j);
    } catch (const HttpError&) {
    }
    return 0;
}
