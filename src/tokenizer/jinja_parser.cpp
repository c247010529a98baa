#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "bitnet/error.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"

namespace bitnet::jinja {

namespace {

using Names = std::initializer_list<std::string_view>;

class Parser {
  public:
    Parser(std::vector<Token> tokens, int max_depth)
        : toks_(std::move(tokens)), max_depth_(max_depth) {}

    Program run() {
        Program p;
        p.body = parse_statements({});
        for (const Expr* e : unknown_) {
            if (!e->value.flag) {
                fail_at(e->line, e->col,
                        std::string("no ") + (e->kind == ExprKind::Filter ? "filter" : "test") +
                            " named '" + e->name + "'");
            }
        }
        return p;
    }

  private:
    std::vector<Token> toks_;
    size_t pos_ = 0;
    int max_depth_;
    int depth_ = 0;
    int loop_depth_ = 0;
    bool soft_ = false;
    std::vector<Expr*> unknown_;  // unknown filters/tests; value.flag marks "inside an if"
    std::vector<std::vector<std::string>*> macro_refs_;

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > p.max_depth_) {
                p.fail("template nested deeper than " + std::to_string(p.max_depth_) + " levels");
            }
        }
        ~DepthGuard() { --p.depth_; }
        DepthGuard(const DepthGuard&) = delete;
        DepthGuard& operator=(const DepthGuard&) = delete;
    };

    const Token& cur() const { return toks_[pos_]; }
    const Token& next() {
        const Token& t = toks_[pos_];
        if (pos_ + 1 < toks_.size()) ++pos_;
        return t;
    }
    bool is_op(std::string_view op) const {
        return cur().type == TokenType::Op && cur().text == op;
    }
    bool is_name(std::string_view n) const {
        return cur().type == TokenType::Name && cur().text == n;
    }
    bool is_name_in(Names names) const {
        return cur().type == TokenType::Name &&
               std::find(names.begin(), names.end(), cur().text) != names.end();
    }
    bool skip_op(std::string_view op) {
        if (!is_op(op)) return false;
        next();
        return true;
    }
    [[noreturn]] void fail_at(int line, int col, const std::string& msg) const {
        throw Error("chat template syntax error: " + msg + " at " + where(line, col));
    }
    [[noreturn]] void fail(const std::string& msg) const { fail_at(cur().line, cur().col, msg); }
    [[noreturn]] void unsupported(const std::string& what) const {
        throw NotSupported("chat template: " + what + " at " + where(cur().line, cur().col));
    }
    static std::string describe(const Token& t) {
        switch (t.type) {
            case TokenType::Eof:
                return "end of template";
            case TokenType::VarEnd:
                return "'}}'";
            case TokenType::BlockEnd:
                return "'%}'";
            case TokenType::Data:
                return "template data";
            case TokenType::String:
                return "string";
            default:
                return "'" + t.text + "'";
        }
    }
    void expect_op(std::string_view op) {
        if (!skip_op(op)) fail("expected '" + std::string(op) + "', got " + describe(cur()));
    }
    std::string expect_name() {
        if (cur().type != TokenType::Name) fail("expected a name, got " + describe(cur()));
        return next().text;
    }
    void expect_block_end() {
        if (cur().type != TokenType::BlockEnd)
            fail("expected end of statement '%}', got " + describe(cur()));
        next();
    }
    ExprPtr make(ExprKind kind, const Token& at) const {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = at.line;
        e->col = at.col;
        return e;
    }
    static void mark_soft(Expr* e) {
        if (e == nullptr) return;
        if (e->kind == ExprKind::Filter || e->kind == ExprKind::Test) e->value.flag = true;
        for (auto& c : e->children) mark_soft(c.get());
        for (auto& kv : e->kwargs) mark_soft(kv.second.get());
    }

    // ---- expressions ----
    ExprPtr parse_expression(bool with_condexpr = true) {
        DepthGuard g(*this);
        return with_condexpr ? parse_condexpr() : parse_or();
    }
    ExprPtr parse_condexpr() {
        ExprPtr expr1 = parse_or();
        while (is_name("if")) {
            const Token& t = next();
            auto c = make(ExprKind::CondExpr, t);
            ExprPtr test = parse_or();
            ExprPtr expr3;
            if (is_name("else")) {
                next();
                expr3 = parse_condexpr();
            }
            c->children.push_back(std::move(test));
            c->children.push_back(std::move(expr1));
            c->children.push_back(std::move(expr3));
            mark_soft(c.get());
            expr1 = std::move(c);
        }
        return expr1;
    }
    ExprPtr binary(ExprKind kind, const Token& at, ExprPtr l, ExprPtr r, std::string op = {}) {
        auto e = make(kind, at);
        e->name = std::move(op);
        e->children.push_back(std::move(l));
        e->children.push_back(std::move(r));
        return e;
    }
    ExprPtr parse_or() {
        ExprPtr left = parse_and();
        while (is_name("or")) {
            const Token& t = next();
            left = binary(ExprKind::Or, t, std::move(left), parse_and());
        }
        return left;
    }
    ExprPtr parse_and() {
        ExprPtr left = parse_not();
        while (is_name("and")) {
            const Token& t = next();
            left = binary(ExprKind::And, t, std::move(left), parse_not());
        }
        return left;
    }
    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard g(*this);
            auto e = make(ExprKind::Not, next());
            e->children.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }
    ExprPtr parse_compare() {
        const Token& start = cur();
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        while (true) {
            std::string op;
            if (cur().type == TokenType::Op &&
                (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                 cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
                op = next().text;
            } else if (is_name("in")) {
                next();
                op = "in";
            } else if (is_name("not") && pos_ + 1 < toks_.size() &&
                       toks_[pos_ + 1].type == TokenType::Name && toks_[pos_ + 1].text == "in") {
                next();
                next();
                op = "notin";
            } else {
                break;
            }
            if (!cmp) {
                cmp = make(ExprKind::Compare, start);
                cmp->children.push_back(std::move(first));
            }
            cmp->ops.push_back(op);
            cmp->children.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }
    ExprPtr parse_math1() {
        ExprPtr left = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token& t = next();
            left = binary(ExprKind::Binary, t, std::move(left), parse_concat(), t.text);
        }
        return left;
    }
    ExprPtr parse_concat() {
        const Token& start = cur();
        ExprPtr first = parse_math2();
        if (!is_op("~")) return first;
        auto e = make(ExprKind::Concat, start);
        e->children.push_back(std::move(first));
        while (skip_op("~")) e->children.push_back(parse_math2());
        return e;
    }
    ExprPtr parse_math2() {
        ExprPtr left = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token& t = next();
            left = binary(ExprKind::Binary, t, std::move(left), parse_pow(), t.text);
        }
        return left;
    }
    ExprPtr parse_pow() {
        ExprPtr left = parse_unary(true);
        while (is_op("**")) {
            const Token& t = next();
            left = binary(ExprKind::Binary, t, std::move(left), parse_unary(true), "**");
        }
        return left;
    }
    ExprPtr parse_unary(bool with_filter) {
        DepthGuard g(*this);
        ExprPtr node;
        if (is_op("-") || is_op("+")) {
            const Token& t = next();
            node = make(t.text == "-" ? ExprKind::Neg : ExprKind::Pos, t);
            node->children.push_back(parse_unary(false));
        } else {
            node = parse_primary();
        }
        node = parse_postfix(std::move(node));
        if (with_filter) node = parse_filter_expr(std::move(node));
        return node;
    }
    ExprPtr parse_primary() {
        const Token& t = cur();
        switch (t.type) {
            case TokenType::Name: {
                next();
                static constexpr std::pair<std::string_view, int> kConsts[] = {
                    {"true", 1}, {"True", 1}, {"false", 0}, {"False", 0}, {"none", 2}, {"None", 2}};
                for (const auto& [n, v] : kConsts) {
                    if (t.text == n) {
                        auto e = make(ExprKind::Const, t);
                        e->value = v == 2 ? Value::none() : Value::boolean(v == 1);
                        return e;
                    }
                }
                for (auto* refs : macro_refs_) refs->push_back(t.text);
                auto e = make(ExprKind::Name, t);
                e->name = t.text;
                return e;
            }
            case TokenType::String: {
                auto e = make(ExprKind::Const, t);
                std::string s;
                while (cur().type == TokenType::String) s += next().text;
                e->value = Value::string(std::move(s));
                return e;
            }
            case TokenType::Int:
            case TokenType::Float: {
                next();
                auto e = make(ExprKind::Const, t);
                e->value = t.type == TokenType::Int ? Value::integer(t.int_value)
                                                    : Value::number(t.float_value);
                return e;
            }
            default:
                break;
        }
        if (is_op("(")) {
            next();
            ExprPtr e = parse_tuple(false, true, true, {});
            expect_op(")");
            return e;
        }
        if (is_op("[")) return parse_list();
        if (is_op("{")) return parse_dict();
        fail("unexpected " + describe(t));
    }
    ExprPtr parse_list() {
        auto e = make(ExprKind::List, next());
        while (!is_op("]")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("]")) break;
            e->children.push_back(parse_expression());
        }
        expect_op("]");
        return e;
    }
    ExprPtr parse_dict() {
        auto e = make(ExprKind::Dict, next());
        while (!is_op("}")) {
            if (!e->children.empty()) expect_op(",");
            if (is_op("}")) break;
            e->children.push_back(parse_expression());
            expect_op(":");
            e->children.push_back(parse_expression());
        }
        expect_op("}");
        return e;
    }
    bool is_tuple_end(Names extra_end) const {
        const TokenType t = cur().type;
        if (t == TokenType::VarEnd || t == TokenType::BlockEnd || is_op(")")) return true;
        return extra_end.size() > 0 && is_name_in(extra_end);
    }
    // Jinja2's parse_tuple: "a, b" builds a tuple; a single expression stays itself unless
    // parenthesised with a trailing comma.
    ExprPtr parse_tuple(bool simplified, bool with_condexpr, bool explicit_parens,
                        Names extra_end) {
        const Token& start = cur();
        std::vector<ExprPtr> items;
        bool is_tuple = false;
        while (true) {
            if (!items.empty()) expect_op(",");
            if (is_tuple_end(extra_end)) break;
            if (simplified) {
                items.push_back(parse_primary());
            } else {
                items.push_back(parse_expression(with_condexpr));
            }
            if (is_op(",")) {
                is_tuple = true;
            } else {
                break;
            }
        }
        if (!is_tuple) {
            if (!items.empty()) return std::move(items[0]);
            if (!explicit_parens) fail("expected an expression, got " + describe(cur()));
        }
        auto e = make(ExprKind::Tuple, start);
        e->children = std::move(items);
        return e;
    }
    ExprPtr parse_postfix(ExprPtr node) {
        while (true) {
            if (is_op(".") || is_op("[")) {
                node = parse_subscript(std::move(node));
            } else if (is_op("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }
    ExprPtr parse_subscript(ExprPtr node) {
        const Token& t = next();
        if (t.text == ".") {
            const Token& attr = cur();
            if (attr.type == TokenType::Name) {
                next();
                auto e = make(ExprKind::GetAttr, t);
                e->name = attr.text;
                e->children.push_back(std::move(node));
                return e;
            }
            if (attr.type != TokenType::Int) fail("expected name or number after '.'");
            next();
            auto e = make(ExprKind::GetItem, t);
            e->children.push_back(std::move(node));
            auto idx = make(ExprKind::Const, attr);
            idx->value = Value::integer(attr.int_value);
            e->children.push_back(std::move(idx));
            return e;
        }
        std::vector<ExprPtr> args;
        while (!is_op("]")) {
            if (!args.empty()) {
                expect_op(",");
                if (is_op("]")) break;
            }
            args.push_back(parse_subscribed());
        }
        expect_op("]");
        if (args.empty()) fail("expected a subscript");
        ExprPtr key;
        if (args.size() == 1) {
            key = std::move(args[0]);
        } else {
            // x[a:b, c]: a tuple holding a slice, which no value here can be indexed with
            // (and whose slice node has no subject to evaluate).
            for (const ExprPtr& a : args) {
                if (a->kind == ExprKind::Slice)
                    fail_at(a->line, a->col, "a slice inside a tuple subscript is not supported");
            }
            key = make(ExprKind::Tuple, t);
            key->children = std::move(args);
        }
        if (key->kind == ExprKind::Slice) {
            key->children[0] = std::move(node);
            return key;
        }
        auto e = make(ExprKind::GetItem, t);
        e->children.push_back(std::move(node));
        e->children.push_back(std::move(key));
        return e;
    }
    // A subscript or a slice; a slice comes back as Slice with children[0] empty.
    ExprPtr parse_subscribed() {
        const Token& start = cur();
        std::vector<ExprPtr> parts;
        if (is_op(":")) {
            next();
            parts.push_back(nullptr);
        } else {
            ExprPtr node = parse_expression();
            if (!is_op(":")) return node;
            next();
            parts.push_back(std::move(node));
        }
        const bool has_stop = !is_op(":") && !is_op("]") && !is_op(",");
        parts.push_back(has_stop ? parse_expression() : nullptr);
        if (is_op(":")) {
            next();
            parts.push_back(!is_op("]") && !is_op(",") ? parse_expression() : nullptr);
        } else {
            parts.push_back(nullptr);
        }
        auto e = make(ExprKind::Slice, start);
        e->children.push_back(nullptr);
        for (auto& p : parts) e->children.push_back(std::move(p));
        return e;
    }
    void parse_call_args(Expr& call) {
        expect_op("(");
        bool seen_kw = false;
        while (!is_op(")")) {
            if (!call.kwargs.empty() || call.children.size() > 1 || seen_kw) {
                expect_op(",");
                if (is_op(")")) break;
            }
            seen_kw = true;
            if (is_op("*") || is_op("**")) unsupported("*args / **kwargs in calls");
            if (cur().type == TokenType::Name && pos_ + 1 < toks_.size() &&
                toks_[pos_ + 1].type == TokenType::Op && toks_[pos_ + 1].text == "=") {
                std::string key = next().text;
                next();
                call.kwargs.emplace_back(std::move(key), parse_expression());
            } else {
                if (!call.kwargs.empty()) fail("invalid syntax for function call expression");
                call.children.push_back(parse_expression());
            }
        }
        expect_op(")");
    }
    ExprPtr parse_call(ExprPtr node) {
        auto e = make(ExprKind::Call, cur());
        e->children.push_back(std::move(node));
        parse_call_args(*e);
        return e;
    }
    std::string dotted_name() {
        std::string name = expect_name();
        while (is_op(".")) {
            next();
            name += "." + expect_name();
        }
        return name;
    }
    ExprPtr parse_filter(ExprPtr node, bool start_inline) {
        while (is_op("|") || start_inline) {
            if (!start_inline) next();
            start_inline = false;
            const Token& t = cur();
            auto e = make(ExprKind::Filter, t);
            e->name = dotted_name();
            e->children.push_back(std::move(node));
            if (is_op("(")) parse_call_args(*e);
            if (!has_filter(e->name)) {
                e->value.flag = soft_;
                unknown_.push_back(e.get());
            }
            node = std::move(e);
        }
        return node;
    }
    ExprPtr parse_test(ExprPtr node) {
        next();  // is
        auto e = make(ExprKind::Test, cur());
        if (is_name("not")) {
            next();
            e->negated = true;
        }
        e->name = dotted_name();
        e->children.push_back(std::move(node));
        const TokenType tt = cur().type;
        if (is_op("(")) {
            parse_call_args(*e);
        } else if ((tt == TokenType::Name || tt == TokenType::String || tt == TokenType::Int ||
                    tt == TokenType::Float || is_op("[") || is_op("{")) &&
                   !is_name_in({"else", "or", "and"})) {
            if (is_name("is")) fail("you cannot chain multiple tests with is");
            e->children.push_back(parse_postfix(parse_primary()));
        }
        if (!has_test(e->name)) {
            e->value.flag = soft_;
            unknown_.push_back(e.get());
        }
        return e;
    }
    ExprPtr parse_filter_expr(ExprPtr node) {
        while (true) {
            if (is_op("|")) {
                node = parse_filter(std::move(node), false);
            } else if (is_name("is")) {
                node = parse_test(std::move(node));
            } else if (is_op("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }
    // name | ns.attr | a, b (tuples of names)
    ExprPtr parse_assign_target(bool with_namespace, Names extra_end) {
        if (with_namespace && cur().type == TokenType::Name && pos_ + 2 < toks_.size() &&
            toks_[pos_ + 1].type == TokenType::Op && toks_[pos_ + 1].text == ".") {
            const Token& t = cur();
            auto obj = make(ExprKind::Name, t);
            obj->name = next().text;
            next();
            auto e = make(ExprKind::GetAttr, t);
            e->name = expect_name();
            e->children.push_back(std::move(obj));
            return e;
        }
        ExprPtr target = parse_tuple(true, true, false, extra_end);
        check_target(*target);
        return target;
    }
    void check_target(const Expr& e) const {
        if (e.kind == ExprKind::Name) return;
        if (e.kind == ExprKind::Tuple) {
            for (const auto& c : e.children) check_target(*c);
            return;
        }
        fail_at(e.line, e.col, "can't assign to this expression");
    }

    // ---- statements ----
    StmtPtr make_stmt(StmtKind kind, const Token& at) const {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        s->line = at.line;
        s->col = at.col;
        return s;
    }
    // Parses until a block whose keyword is in `end`; leaves the keyword as the current token.
    Body parse_statements(Names end) {
        DepthGuard g(*this);
        Body body;
        while (true) {
            const Token& t = cur();
            switch (t.type) {
                case TokenType::Eof: {
                    if (end.size() == 0) return body;
                    std::string want;
                    for (const auto n : end)
                        want += (want.empty() ? "'" : " or '") + std::string(n) + "'";
                    fail("unexpected end of template, expected " + want);
                }
                case TokenType::Data: {
                    auto s = make_stmt(StmtKind::Data, t);
                    s->text = next().text;
                    body.push_back(std::move(s));
                    break;
                }
                case TokenType::VarBegin: {
                    next();
                    auto s = make_stmt(StmtKind::Print, t);
                    s->expr = parse_tuple(false, true, false, {});
                    if (cur().type != TokenType::VarEnd)
                        fail("expected '}}', got " + describe(cur()));
                    next();
                    body.push_back(std::move(s));
                    break;
                }
                case TokenType::BlockBegin: {
                    next();
                    if (cur().type != TokenType::Name)
                        fail("expected a statement name, got " + describe(cur()));
                    if (is_name_in(end)) return body;
                    body.push_back(parse_statement());
                    break;
                }
                default:
                    fail("unexpected " + describe(t));
            }
        }
    }
    void expect_end(std::string_view keyword) {
        if (!is_name(keyword)) fail("expected '" + std::string(keyword) + "'");
        next();
        expect_block_end();
    }
    StmtPtr parse_statement() {
        const Token& t = cur();
        const std::string& kw = t.text;
        if (kw == "if") return parse_if();
        if (kw == "for") return parse_for();
        if (kw == "set") return parse_set();
        if (kw == "macro") return parse_macro();
        if (kw == "call") return parse_call_block();
        if (kw == "filter") return parse_filter_block();
        if (kw == "with") return parse_with();
        if (kw == "generation") {
            next();
            expect_block_end();
            auto s = make_stmt(StmtKind::Generation, t);
            s->body = parse_hard_body({"endgeneration"}, true);
            expect_end("endgeneration");
            return s;
        }
        if (kw == "break" || kw == "continue") {
            if (loop_depth_ == 0) fail("'" + kw + "' outside of a loop");
            auto s = make_stmt(kw == "break" ? StmtKind::Break : StmtKind::Continue, t);
            next();
            expect_block_end();
            return s;
        }
        static constexpr std::string_view kUnsupported[] = {
            "include", "import", "from", "extends", "block", "autoescape", "do"};
        for (const auto u : kUnsupported) {
            if (kw == u) unsupported("the '" + kw + "' tag");
        }
        fail("unknown tag '" + kw + "'");
    }
    // A body in a new frame (for, macro, call, filter, with): unknown filters there fail at
    // parse time even inside an if, as in Jinja2.
    Body parse_hard_body(Names end, bool resets_loops) {
        const bool saved_soft = soft_;
        const int saved_loops = loop_depth_;
        soft_ = false;
        if (resets_loops) loop_depth_ = 0;
        Body b = parse_statements(end);
        soft_ = saved_soft;
        loop_depth_ = saved_loops;
        return b;
    }
    StmtPtr parse_if() {
        auto s = make_stmt(StmtKind::If, next());
        const bool saved_soft = soft_;
        soft_ = true;
        while (true) {
            ExprPtr cond = parse_tuple(false, false, false, {});
            expect_block_end();
            Body body = parse_statements({"elif", "else", "endif"});
            s->branches.emplace_back(std::move(cond), std::move(body));
            const std::string kw = next().text;
            if (kw == "elif") continue;
            if (kw == "else") {
                expect_block_end();
                s->branches.emplace_back(nullptr, parse_statements({"endif"}));
                next();
            }
            expect_block_end();
            break;
        }
        soft_ = saved_soft;
        return s;
    }
    StmtPtr parse_for() {
        auto s = make_stmt(StmtKind::For, next());
        const bool saved_soft = soft_;
        soft_ = false;
        s->target = parse_assign_target(false, {"in"});
        if (!is_name("in")) fail("expected 'in' in for loop");
        next();
        s->expr = parse_tuple(false, false, false, {"recursive"});
        if (is_name("if")) {
            next();
            s->condition = parse_expression();
        }
        if (is_name("recursive")) unsupported("recursive for loops");
        expect_block_end();
        ++loop_depth_;
        s->body = parse_statements({"endfor", "else"});
        --loop_depth_;
        if (next().text == "else") {
            expect_block_end();
            s->else_body = parse_statements({"endfor"});
            next();
        }
        expect_block_end();
        soft_ = saved_soft;
        return s;
    }
    StmtPtr parse_set() {
        const Token& t = next();
        ExprPtr target = parse_assign_target(true, {});
        if (skip_op("=")) {
            auto s = make_stmt(StmtKind::Set, t);
            s->target = std::move(target);
            s->expr = parse_tuple(false, true, false, {});
            expect_block_end();
            return s;
        }
        auto s = make_stmt(StmtKind::SetBlock, t);
        s->target = std::move(target);
        if (is_op("|")) s->expr = parse_filter(nullptr, false);
        expect_block_end();
        s->body = parse_hard_body({"endset"}, false);
        expect_end("endset");
        return s;
    }
    void parse_signature(Stmt& s) {
        if (!skip_op("(")) return;
        while (!is_op(")")) {
            if (!s.params.empty()) expect_op(",");
            Param p;
            p.name = expect_name();
            if (skip_op("=")) {
                p.default_value = parse_expression();
            } else if (!s.params.empty() && s.params.back().default_value) {
                fail("non-default argument follows default argument");
            }
            s.params.push_back(std::move(p));
        }
        expect_op(")");
    }
    void parse_macro_body(Stmt& s, std::string_view end) {
        std::vector<std::string> refs;
        macro_refs_.push_back(&refs);
        s.body = parse_hard_body({end}, true);
        macro_refs_.pop_back();
        auto used = [&](std::string_view n) {
            return std::find(refs.begin(), refs.end(), n) != refs.end();
        };
        s.uses_caller = used("caller");
        s.uses_varargs = used("varargs");
        s.uses_kwargs = used("kwargs");
        expect_end(end);
    }
    StmtPtr parse_macro() {
        auto s = make_stmt(StmtKind::Macro, next());
        s->name = expect_name();
        if (!is_op("(")) fail("expected '(' after macro name");
        parse_signature(*s);
        expect_block_end();
        parse_macro_body(*s, "endmacro");
        return s;
    }
    StmtPtr parse_call_block() {
        auto s = make_stmt(StmtKind::CallBlock, next());
        if (is_op("(")) parse_signature(*s);
        s->expr = parse_expression();
        if (s->expr->kind != ExprKind::Call) fail("expected a call in the call block");
        expect_block_end();
        parse_macro_body(*s, "endcall");
        return s;
    }
    StmtPtr parse_filter_block() {
        auto s = make_stmt(StmtKind::FilterBlock, next());
        s->expr = parse_filter(nullptr, true);
        expect_block_end();
        s->body = parse_hard_body({"endfilter"}, false);
        expect_end("endfilter");
        return s;
    }
    StmtPtr parse_with() {
        auto s = make_stmt(StmtKind::With, next());
        while (cur().type != TokenType::BlockEnd) {
            if (!s->assigns.empty()) expect_op(",");
            ExprPtr target = parse_assign_target(false, {});
            expect_op("=");
            s->assigns.emplace_back(std::move(target), parse_expression());
        }
        expect_block_end();
        s->body = parse_hard_body({"endwith"}, false);
        expect_end("endwith");
        return s;
    }
};

}  // namespace

Program parse_program(std::string_view source, int max_depth) {
    return Parser(tokenize(source), max_depth).run();
}

}  // namespace bitnet::jinja
