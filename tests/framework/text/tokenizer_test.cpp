// Tokenizers against their reference implementations, id for id, on real text (the README) and
// on edge cases (contractions, digit runs, whitespace runs, accents, CJK, emoji, added tokens):
// byte-level BPE files in tokenizer.json's layout, GPT-2's (ByteLevel pre-tokenizer, "a b"
// merges) and Llama 3's (Split by its regex then ByteLevel, [a, b] merges), whose merges a
// small BPE learner in the script makes from the README; the reference encodes as OpenAI's
// GPT-2 encoder.py does (regex.findall, bytes_to_unicode, bpe() merging by rank), with Debian's
// python3-regex. SentencePiece BPE models trained by python3-sentencepiece, encoded and decoded
// by it.
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

#include "framework/data/tokens.h"
#include "framework/text/tokenizer.h"
#include "framework/weights/safetensors.h"
#include "tests/support/blockc_run.h"
#include "tests/support/reference_folder.h"

namespace blocks::testing {
namespace {

using ::testing::HasSubstr;

// The cases, one per line of cases.txt (\n inside a case written as \\n).
const char* const kWriter = R"(
import json, os, sys, unicodedata
import regex
sys.path.insert(0, SOURCE + '/tests/support')
from tensors import save

readme = open(SOURCE + '/README.md', encoding='utf-8').read()
cases = ["Hello world", "don't stop, we'll see it's 12345 or 3.14159!",
         "a   b\n\n  c\t\td  ", "Ünïcödé naïve café", "中文字符和日本語のテキスト",
         "emoji 🤖🚀 mixed", "<|endoftext|>after special<|endoftext|>", "  leading spaces",
         "x" * 50, "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ﬁne ﬀ ① ™ ½ ㍻ Ⅻ",
         "\u3000ideographic\u3000 space\u3000", "e\u0301 or é, A\u030a or Å", "a<sep>b <sep> c",
         readme]

from bpe_reference import Encoder, learn, GPT2, LLAMA3, QWEN2, GPT2_PRE, LLAMA3_PRE, QWEN2_PRE

def build(name, pattern, merges, specials, pre, merge_format, form=None):
    encoder = Encoder(pattern, merges, specials, form)
    encoder.write(f'{DIR}/{name}', pre, merge_format, merges)
    save({f'case{k}': torch.tensor(encoder.encode(text), dtype=torch.int64)
          for k, text in enumerate(cases)}, f'{DIR}/{name}/ids.safetensors')
    if form:  # decoding gives the normalized text back
        json.dump([unicodedata.normalize(form, t) for t in cases],
                  open(f'{DIR}/{name}/decoded.json', 'w', encoding='utf-8'), ensure_ascii=False)

build('gpt2', GPT2, learn(readme, GPT2, 300), ['<|endoftext|>'], GPT2_PRE, lambda a, b: a + ' ' + b)
build('llama3', LLAMA3, learn(readme, LLAMA3, 300),
      ['<|begin_of_text|>', '<|end_of_text|>', '<|endoftext|>'], LLAMA3_PRE, lambda a, b: [a, b])
build('qwen2', QWEN2, learn(readme, QWEN2, 300), ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
      QWEN2_PRE, lambda a, b: [a, b], form='NFC')

# SentencePiece models trained by python3-sentencepiece, encoded and decoded by it: BPE with
# Llama 2's settings (identity normalization, byte fallback, no removal of extra spaces), with the
# defaults' space removal, without byte fallback (unknown runs become one <unk>); unigram as T5
# trains it (nmt_nfkc: the precompiled charsmap) with a user-defined piece, with nmt_nfkc_cf and
# byte fallback; and BPE over nmt_nfkc.
import sentencepiece as spm
bpe = dict(model_type='bpe', normalization_rule_name='identity', character_coverage=1.0)
unigram = dict(model_type='unigram', normalization_rule_name='nmt_nfkc', character_coverage=0.995)
for name, options in (('sp', bpe | dict(byte_fallback=True, remove_extra_whitespaces=False)),
                      ('sp_spaces', bpe | dict(byte_fallback=True)),
                      ('sp_unk', bpe | dict(byte_fallback=False, character_coverage=0.98)),
                      ('unigram', unigram | dict(user_defined_symbols=['<sep>'])),
                      ('unigram_cf', unigram | dict(normalization_rule_name='nmt_nfkc_cf',
                                                    byte_fallback=True)),
                      ('sp_nfkc', bpe | dict(normalization_rule_name='nmt_nfkc', byte_fallback=True))):
    os.makedirs(f'{DIR}/{name}', exist_ok=True)
    spm.SentencePieceTrainer.train(input=SOURCE + '/README.md', model_prefix=f'{DIR}/{name}/tokenizer',
                                   vocab_size=400, minloglevel=2, **options)
    sp = spm.SentencePieceProcessor(model_file=f'{DIR}/{name}/tokenizer.model')
    save({f'case{k}': torch.tensor(sp.encode(t), dtype=torch.int64) for k, t in enumerate(cases)},
         f'{DIR}/{name}/ids.safetensors')
    json.dump([sp.decode(sp.encode(t)) for t in cases], open(f'{DIR}/{name}/decoded.json', 'w', encoding='utf-8'),
              ensure_ascii=False)
with open(DIR + '/cases.json', 'w', encoding='utf-8') as f:
    json.dump(cases, f, ensure_ascii=False)
)";

class Tokenizers : public SharedReferenceFolder<Tokenizers> {
 public:
  static const char* script() { return kWriter; }

 protected:
  static std::vector<std::string> cases() {
    std::ifstream in(at("cases.json"));
    return nlohmann::json::parse(in).get<std::vector<std::string>>();
  }
  // Encodes every case with `tokenizer` and compares with the reference's ids; decoding gives
  // the text back (or, with `decoded`, what the reference decodes).
  static void expect_reference_ids(const std::string& tokenizer, const std::string& ids_file,
                                   const std::string& decoded = "") {
    const auto t = text::load_tokenizer(tokenizer);
    const auto file = weights::SafetensorsFile::open(ids_file);
    const auto texts = cases();
    for (size_t k = 0; k < texts.size(); ++k) {
      const at::Tensor want = file.tensor("case" + std::to_string(k));
      const std::vector<int64_t> expected(want.data_ptr<int64_t>(),
                                          want.data_ptr<int64_t>() + want.numel());
      const auto got = t->encode(texts[k]);
      EXPECT_EQ(got, expected) << "case " << k << ": " << texts[k].substr(0, 60);
      const std::string back =
          decoded.empty() ? texts[k]
                          : nlohmann::json::parse(std::ifstream(decoded))[k].get<std::string>();
      EXPECT_EQ(t->decode(got), back) << "case " << k;
    }
  }
};

TEST_F(Tokenizers, Gpt2ByteLevelBpeMatchesEncoderPy) {
  expect_reference_ids(at("gpt2/tokenizer.json"), at("gpt2/ids.safetensors"));
  const auto t = text::load_tokenizer(at("gpt2"));  // the folder finds its tokenizer.json
  EXPECT_EQ(t->kind(), "byte-level BPE");
  EXPECT_EQ(t->eos, t->vocab_size() - 1) << "<|endoftext|>";
  EXPECT_EQ(t->piece(t->encode(" world").front()).substr(0, 2), "\xC4\xA0") << "Ġ";
}

// SentencePiece BPE read by blocks itself, against python3-sentencepiece: ids and decoded text
// for every case, in the three settings the script trains.
TEST_F(Tokenizers, SentencePieceBpeMatchesPythonSentencepiece) {
  for (const char* name : {"sp", "sp_spaces", "sp_unk"}) {
    SCOPED_TRACE(name);
    const std::string dir = at(name);
    expect_reference_ids(dir + "/tokenizer.model", dir + "/ids.safetensors",
                         dir + "/decoded.json");
  }
  const auto t = text::load_tokenizer(at("sp"));
  EXPECT_EQ(t->kind(), "SentencePiece BPE");
  EXPECT_EQ(t->vocab_size(), 400);
  EXPECT_EQ(t->bos, 1);
  EXPECT_EQ(t->eos, 2);
  EXPECT_EQ(t->piece(*t->bos), "<s>");
  // A Llama 2 folder: a tokenizer.json blocks does not read beside its tokenizer.model.
  const std::filesystem::path both = at("llama2_folder");
  std::filesystem::create_directories(both);
  std::filesystem::copy_file(at("sp/tokenizer.model"), both / "tokenizer.model");
  std::ofstream(both / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {}}, )"
                                         << R"("normalizer": {"type": "Replace"}})";
  EXPECT_EQ(text::load_tokenizer(both.string())->kind(), "SentencePiece BPE");
}

// BOS and EOS as tokenizer_config.json beside tokenizer.json names them (a string or an
// AddedToken object), as transformers reads them; a name the vocabulary lacks is an error.
// SentencePiece unigram (T5's kind) and normalization by a precompiled charsmap (nmt_nfkc,
// nmt_nfkc_cf: full-width forms, ligatures, compatibility characters, ideographic spaces,
// combining marks composed), read by blocks itself, against python3-sentencepiece; a damaged
// charsmap is named.
TEST_F(Tokenizers, SentencePieceUnigramAndNfkcMatchPythonSentencepiece) {
  for (const char* name : {"unigram", "unigram_cf", "sp_nfkc"}) {
    SCOPED_TRACE(name);
    const std::string dir = at(name);
    expect_reference_ids(dir + "/tokenizer.model", dir + "/ids.safetensors",
                         dir + "/decoded.json");
  }
  const auto t = text::load_tokenizer(at("unigram"));
  EXPECT_EQ(t->kind(), "SentencePiece unigram");
  EXPECT_EQ(t->added_tokens(), std::vector<std::string>{"<sep>"});
  // A model whose charsmap's trie size (16) is more than the charsmap holds: one <unk> piece, a
  // unigram trainer spec and a normalizer spec, in protobuf's wire format.
  const std::string path = at("damaged.model");
  std::ofstream(path, std::ios::binary) << std::string(
      "\x0a\x0e\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02"
      "\x12\x02\x18\x01"
      "\x1a\x06\x12\x04\x10\x00\x00\x00", 30);
  try {
    text::load_tokenizer(path);
    ADD_FAILURE() << "no error";
  } catch (const text::TokenizerError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": the normalizer's precompiled charsmap is cut or "
                                            "damaged");
  }
}

TEST_F(Tokenizers, TokenizerConfigNamesBosAndEos) {
  const std::filesystem::path dir = at("configured");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(at("llama3/tokenizer.json"), dir / "tokenizer.json");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|endoftext|>"})";
  const auto t = text::load_tokenizer(dir.string());
  ASSERT_TRUE(t->bos && t->eos);
  EXPECT_EQ(t->piece(*t->bos), "<|begin_of_text|>");
  EXPECT_EQ(t->piece(*t->eos), "<|endoftext|>");
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<|eot_id|>"})";
  try {
    text::load_tokenizer(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const text::TokenizerError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "tokenizer_config.json").string() +
                                         ": eos_token '<|eot_id|>' is not in " +
                                         (dir / "tokenizer.json").string());
  }
}

TEST_F(Tokenizers, Llama3SplitThenByteLevelMatchesTheReference) {
  expect_reference_ids(at("llama3/tokenizer.json"), at("llama3/ids.safetensors"));
  const auto t = text::load_tokenizer(at("llama3/tokenizer.json"));
  ASSERT_TRUE(t->bos && t->eos);
  EXPECT_EQ(t->piece(*t->bos), "<|begin_of_text|>");
  EXPECT_EQ(t->piece(*t->eos), "<|end_of_text|>");
}

// Qwen2's tokenizer.json: NFC before its Split (single digits), as tokenizers' normalizer runs
// between added tokens; the combining-mark cases compose.
TEST_F(Tokenizers, Qwen2NfcThenSplitMatchesTheReference) {
  expect_reference_ids(at("qwen2/tokenizer.json"), at("qwen2/ids.safetensors"),
                       at("qwen2/decoded.json"));
  const auto t = text::load_tokenizer(at("qwen2"));
  EXPECT_EQ(t->decode(t->encode("e\u0301")), "\u00e9");
}

TEST_F(Tokenizers, BadInputIsNamed) {
  const auto t = text::load_tokenizer(at("gpt2"));
  auto error = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const text::TokenizerError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error([&] { t->encode("ok \xff then"); }),
            "the text is not UTF-8: byte 3 (0xff) starts no character");
  EXPECT_EQ(error([&] { t->encode("cut \xE4\xB8"); }),
            "the text is not UTF-8: byte 4 (0xe4) starts no character");
  EXPECT_THAT(error([&] { t->decode({5, t->vocab_size()}); }),
              HasSubstr("id " + std::to_string(t->vocab_size()) + " is outside the vocabulary"));
  const std::string broken = at("broken.json");
  std::ofstream(broken) << "{\"model\": ";
  EXPECT_THAT(error([&] { text::load_tokenizer(broken); }), HasSubstr(broken + ": not JSON"));
  const std::string wordpiece = at("wordpiece.json");
  std::ofstream(wordpiece) << R"({"model": {"type": "WordPiece", "vocab": {}}})";
  EXPECT_EQ(error([&] { text::load_tokenizer(wordpiece); }),
            wordpiece + ": model type 'WordPiece': blocks reads byte-level BPE models only");
  EXPECT_THAT(error([&] { text::load_tokenizer(at("nothing")); }), HasSubstr("no such file"));
  const std::string sentencepiece = at("tokenizer.model");
  std::ofstream(sentencepiece) << "\x0a\xff\xff";  // a piece longer than the file
  EXPECT_EQ(error([&] { text::load_tokenizer(sentencepiece); }),
            sentencepiece + ": not a SentencePiece model (its protobuf is cut or damaged)");
  // Bytes: ids are the text's bytes.
  const auto bytes = text::load_tokenizer("bytes");
  EXPECT_EQ(bytes->encode("A\n"), (std::vector<int64_t>{65, 10}));
  EXPECT_EQ(bytes->decode({104, 105}), "hi");
  EXPECT_EQ(bytes->piece(10), "<0x0A>");
}

TEST_F(Tokenizers, BlockcTokenizeShowsIdsAndPieces) {
  const auto r = blockc("tokenize --tokenizer " + at("gpt2") + " --text 'Hello world' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto json = nlohmann::json::parse(r.out);
  const auto t = text::load_tokenizer(at("gpt2"));
  EXPECT_EQ(json["ids"].get<std::vector<int64_t>>(), t->encode("Hello world"));
  std::string joined;
  for (const auto& p : json["pieces"]) joined += p.get<std::string>();
  EXPECT_EQ(joined, "Hello\xC4\xA0world");
  const auto back = blockc("tokenize --tokenizer " + at("gpt2") + " --decode " +
                           [&] {
                             std::string ids;
                             for (int64_t id : t->encode("Hello world")) ids += std::to_string(id) + " ";
                             return ids;
                           }());
  ASSERT_EQ(back.code, 0) << back.err;
  EXPECT_EQ(back.out, "Hello world\n");
  const auto bad = blockc("tokenize --tokenizer " + at("nothing") + " --text x");
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("no such file or folder"));
}

// blockc prepare --text with a tokenizer: the two token files, read back and decoded, are the
// documents, each followed by <|endoftext|>; 90% of the tokens train.
TEST_F(Tokenizers, PrepareWritesTheTrainersTokenFiles) {
  std::ofstream(at("doc1.txt")) << "The first document, with some words.";
  std::ofstream(at("doc2.txt")) << "And a second one: 12345 numbers, café and 中文.";
  const auto r = blockc("prepare --text " + at("doc1.txt") + " " + at("doc2.txt") +
                        " --tokenizer " + at("gpt2") + " -o " + at("prepared"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto t = text::load_tokenizer(at("gpt2"));
  std::vector<int64_t> want = t->encode("The first document, with some words.");
  want.push_back(*t->eos);
  for (int64_t id : t->encode("And a second one: 12345 numbers, café and 中文.")) want.push_back(id);
  want.push_back(*t->eos);
  std::vector<int64_t> got;
  for (const char* split : {"prepared/train.bin", "prepared/val.bin"}) {
    const data::TokenFile file(at(split));
    std::vector<int64_t> ids(file.size());
    file.read(0, ids.size(), ids.data());
    got.insert(got.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(data::TokenFile(at("prepared/train.bin")).size(),
            static_cast<uint64_t>(static_cast<double>(want.size()) * 0.9));
  EXPECT_THAT(r.out, HasSubstr("vocabulary " + std::to_string(t->vocab_size()) + " (byte-level BPE)"));
  const auto bad = blockc("prepare --text " + at("doc1.txt") + " -o " + at("x"));
  EXPECT_EQ(bad.code, 2) << "--text needs --tokenizer";
}

}  // namespace
}  // namespace blocks::testing
