// Hugging Face safetensors files (format: the README of github.com/huggingface/safetensors).
//
//   bytes 0..8      N, the header length (little-endian uint64)
//   bytes 8..8+N    a JSON object, UTF-8, starting with '{' (trailing spaces allowed):
//                   {"NAME": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [b, e]},
//                    ..., "__metadata__": {"key": "string value", ...}}
//   bytes 8+N..     the data area; a tensor's bytes are [8+N+b, 8+N+e), row-major, little-endian
//
// The reader is strict, as the format asks: the header is at most 100 MB and inside the file,
// every entry has exactly those three fields, dtypes are ones we can read (F32, F16, BF16, U8,
// I8; the others are "not supported"), shape times element size equals the byte range, and the
// ranges, sorted, are contiguous without gaps or overlaps and cover the data area exactly. Every
// error names the file, the tensor and the field. The file is memory-mapped; tensors are used in
// place.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

enum class StDtype { F32, F16, BF16, U8, I8 };

// "F32", "F16", "BF16", "U8", "I8".
const char* st_dtype_name(StDtype t);
// Bytes per element.
size_t st_dtype_size(StDtype t);

struct StTensor {
    std::string name;
    StDtype dtype = StDtype::F32;
    std::vector<int64_t> shape;  // as written: outermost first ([out, in] for a Linear weight)
    std::span<const uint8_t> bytes;
    int64_t elements() const;
};

class SafetensorsFile {
  public:
    // Throws Error (bad file, naming the field) or NotSupported (a dtype we cannot read).
    static SafetensorsFile open(const std::string& path);
    // The same checks on bytes in memory (the fuzz target's entry); `name` is for messages.
    // The bytes must outlive the object.
    static SafetensorsFile parse(std::span<const uint8_t> bytes, const std::string& name);

    const std::string& path() const { return path_; }
    // In data order.
    const std::vector<StTensor>& tensors() const { return tensors_; }
    const StTensor* find(std::string_view name) const;
    // The "__metadata__" strings.
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

  private:
    std::string path_;
    std::shared_ptr<const void> mapping_;  // keeps an opened file mapped
    std::vector<StTensor> tensors_;
    std::map<std::string, size_t, std::less<>> index_;
    std::map<std::string, std::string> metadata_;
};

// A tensor's values as float (F32, F16, BF16, U8 and I8 converted exactly).
std::vector<float> st_to_float(const StTensor& t);

// A checkpoint folder: model.safetensors, or the shards model.safetensors.index.json names
// (its "weight_map" of tensor name to shard file; every shard is opened and every tensor of the
// map must be in the shard it names).
class SafetensorsCheckpoint {
  public:
    static SafetensorsCheckpoint open_dir(const std::string& dir);
    SafetensorsCheckpoint(SafetensorsCheckpoint&&) = default;
    SafetensorsCheckpoint& operator=(SafetensorsCheckpoint&&) = default;
    SafetensorsCheckpoint(const SafetensorsCheckpoint&) = delete;  // the index points into files_
    SafetensorsCheckpoint& operator=(const SafetensorsCheckpoint&) = delete;
    const StTensor* find(std::string_view name) const;
    // Every tensor, shard by shard in the order of the shards' names, each in data order.
    std::vector<const StTensor*> tensors() const;
    const std::vector<SafetensorsFile>& files() const { return files_; }

  private:
    SafetensorsCheckpoint() = default;
    std::vector<SafetensorsFile> files_;
    std::map<std::string, const StTensor*, std::less<>> index_;
};

}  // namespace bitnet
