#include "connectors/stdio/stdout_sink.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "formats/csv.h"

namespace kbridge {
namespace {

const OptionTable kOptions = with_csv_options({
    {"type", OptionType::String, "", "stdout"},
    {"format",
     OptionType::Choice,
     "json",
     "how values are written, one per line",
     {"json", "raw", "csv"}},
    {"line_format", OptionType::String, "",
     "kcat's -f instead of one value per line: %t topic, %p partition, %o offset, %k key, %s "
     "value, %h headers (name=value,...), %T timestamp (ms), %S value size, %K key size (-1: "
     "none), %% a percent sign; \\n \\t \\r \\\\ escapes"},
});

}  // namespace

const OptionTable& stdout_sink_options() {
    return kOptions;
}

LineFormat::LineFormat(const std::string& text) {
    std::string literal;
    auto flush = [&] {
        if (!literal.empty()) parts_.push_back({0, std::move(literal)});
        literal.clear();
    };
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\\' && i + 1 < text.size()) {
            const char e = text[++i];
            literal += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else if (c == '%') {
            const char t = i + 1 < text.size() ? text[++i] : '\0';
            if (t == '%') {
                literal += '%';
                continue;
            }
            if (std::string("tpoksShTK").find(t) == std::string::npos || t == '\0')
                throw std::invalid_argument(std::string("unknown token '%") +
                                            (t ? std::string(1, t) : "") + "' in '" + text +
                                            "' (known: %t %p %o %k %s %S %h %T %K %%)");
            flush();
            parts_.push_back({t, ""});
        } else {
            literal += c;
        }
    }
    flush();
}

void LineFormat::render(const Record& record, std::string& out) const {
    for (const auto& part : parts_) {
        switch (part.token) {
            case 0:
                out += part.literal;
                break;
            case 't':
                out += record.topic;
                break;
            case 'p':
                out += std::to_string(record.partition);
                break;
            case 'o':
                out += std::to_string(record.offset);
                break;
            case 'k':
                if (record.key) out += *record.key;
                break;
            case 'K':
                out += record.key ? std::to_string(record.key->size()) : "-1";
                break;
            case 's':
                if (record.value) out += *record.value;
                break;
            case 'S':
                out += record.value ? std::to_string(record.value->size()) : "-1";
                break;
            case 'T':
                out += std::to_string(record.timestamp);
                break;
            case 'h':
                for (size_t i = 0; i < record.headers.size(); ++i) {
                    if (i) out += ',';
                    out += record.headers[i].name;
                    out += '=';
                    out += record.headers[i].value;
                }
                break;
        }
    }
}

std::unique_ptr<Sink> make_stdout_sink(const Options& options, const ConnectorContext&) {
    if (options.has("line_format")) {
        if (options.has("format"))
            throw options.error("line_format", "give either format or line_format");
        try {
            return std::make_unique<StdoutSink>(stdout, std::nullopt,
                                                LineFormat(options.str("line_format")));
        } catch (const std::invalid_argument& e) {
            throw options.error("line_format", e.what());
        }
    }
    CsvFormat csv;
    if (parse_format(options, csv) == Format::Csv)
        return std::make_unique<StdoutSink>(stdout, std::move(csv));
    return std::make_unique<StdoutSink>(stdout, std::nullopt);
}

bool StdoutSink::send(const Record& record, const json::Value* fields, BatchState* batch,
                      Rejection& why) {
    if (line_format_) {
        line_.clear();
        line_format_->render(record, line_);
        if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size() && !write_errno_)
            write_errno_ = errno;
        written_.push_back(batch);
        return true;
    }
    if (!record.value) {
        written_.push_back(batch);  // a tombstone has no line to print
        return true;
    }
    if (csv_) {
        if (!fields) {
            why = {"no_fields", "format csv writes fields, and a raw record has none"};
            return false;
        }
        line_.clear();
        csv_from_fields(*fields, *csv_, line_);
        line_ += '\n';
        if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size() && !write_errno_)
            write_errno_ = errno;
        written_.push_back(batch);
        return true;
    }
    if (record.value->find('\n') != std::string_view::npos) {
        why = {"newline", "a value with a line break cannot be one line of output"};
        return false;
    }
    if ((std::fwrite(record.value->data(), 1, record.value->size(), out_) != record.value->size() ||
         std::fputc('\n', out_) == EOF) &&
        !write_errno_)
        write_errno_ = errno;
    written_.push_back(batch);
    return true;
}

void StdoutSink::poll(std::chrono::milliseconds) {
    if (written_.empty()) {
        // A pipe whose reader exited says so (POLLERR) before the next write fails: a follow-mode
        // run under `| head` ends then, not at the next record, which may never come.
        pollfd p{::fileno(out_), 0, 0};
        if (::poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) listener_->abandoned(nullptr);
        return;
    }
    if (std::fflush(out_) != 0 || std::ferror(out_) || write_errno_) {
        const int error_number = write_errno_ ? write_errno_ : errno;
        const std::string error = std::string("writing to stdout: ") + std::strerror(error_number);
        for (BatchState* b : written_) {
            if (error_number == EPIPE)
                listener_->abandoned(b);  // the reader is gone, as under `| head`
            else
                listener_->failed(b, error);
        }
    } else {
        for (BatchState* b : written_) listener_->delivered(b);
    }
    written_.clear();
    write_errno_ = 0;
}

}  // namespace kbridge
