/*
 * A test double for an OpenAI-compatible chat-completions provider.
 *
 * HTTP/1.1 on 127.0.0.1, one poll() loop, a response per connection
 * (Connection: close). Prints "PORT n" on stdout once listening and exits when
 * its stdin closes. Implements:
 *
 *   POST /v1/chat/completions  JSON answers, or SSE (chunked) when "stream":true,
 *                              with a final usage chunk when
 *                              stream_options.include_usage is true
 *   GET  /stats                {"total":n,"models":{"<model>":n,...}}
 *   GET  /last                 the body of the last completion request
 *
 * The request's "model" picks the behaviour: ok, ok-no-usage, fenced,
 * http-500, http-400, http-429-then-ok (odd-numbered requests get 429 with
 * Retry-After: 1), fail-K-then-ok (the first K requests get 500), slow (answers
 * after 3 s), broken-stream (closes mid-answer), bad-json, wrong-types,
 * forbidden (a variant with 最佳). Requests without "Authorization: Bearer
 * <key>" (argv[1], default "test-key") get 401.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define IN_CAP (1024 * 1024)
#define MAX_MODELS 64

struct conn {
    int fd;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off, out_cap;
    bool responding;
    long long respond_at_ms;
};

static struct {
    char name[64];
    unsigned count;
} models[MAX_MODELS];
static unsigned n_models, total;
static char *last_body;
static const char *api_key = "test-key";

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void out_put(struct conn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = (c->out_len + n) * 2 + 1024;
        char *p = realloc(c->out, cap);

        if (p == NULL)
            abort();
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void out_puts(struct conn *c, const char *s)
{
    out_put(c, s, strlen(s));
}

static void respond(struct conn *c, int status, const char *reason, const char *ctype, const char *extra,
                    const char *body)
{
    char head[512];

    snprintf(head, sizeof(head),
             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n", status, reason,
             ctype, strlen(body), extra != NULL ? extra : "");
    out_puts(c, head);
    out_puts(c, body);
}

static void error_answer(struct conn *c, int status, const char *reason, const char *extra, const char *message,
                         const char *type, const char *code)
{
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    char *s;

    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "param");
    if (code != NULL)
        cJSON_AddStringToObject(e, "code", code);
    else
        cJSON_AddNullToObject(e, "code");
    s = cJSON_PrintUnformatted(root);
    respond(c, status, reason, "application/json", extra, s);
    free(s);
    cJSON_Delete(root);
}

static unsigned count_model(const char *m)
{
    total++;
    for (unsigned i = 0; i < n_models; i++) {
        if (strcmp(models[i].name, m) == 0)
            return ++models[i].count;
    }
    if (n_models < MAX_MODELS) {
        snprintf(models[n_models].name, sizeof(models[0].name), "%s", m);
        models[n_models].count = 1;
        return models[n_models++].count;
    }
    return 0;
}

static const char ok_content[] =
    "{\"variants\":["
    "{\"title\":\"Northwind autumn blend\",\"description\":\"The autumn blend has caramel and hazelnut notes. Beans "
    "are roasted every week.\",\"cta\":\"Order now\",\"notes\":\"extra fields are fine\"},"
    "{\"title\":\"Meet Northwind, roasted for {{city}}\",\"description\":\"Beans are roasted every week. The first "
    "bag ships free.\",\"cta\":\"Shop now\"},"
    "{\"title\":\"Northwind: caramel and hazelnut\",\"description\":\"The first bag ships free.\",\"cta\":\"Try it "
    "today\"}]}";

static const char *content_for(const char *model)
{
    if (strcmp(model, "bad-json") == 0)
        return "Sure! Here are three lovely variants for Northwind: one, two, three.";
    if (strcmp(model, "wrong-types") == 0)
        return "{\"variants\":[{\"title\":5,\"description\":\"x\",\"cta\":\"y\"}]}";
    if (strcmp(model, "forbidden") == 0)
        return "{\"variants\":[{\"title\":\"Northwind: 最佳 autumn blend\",\"description\":\"Beans are roasted "
               "every week.\",\"cta\":\"Order now\"}]}";
    if (strcmp(model, "fenced") == 0)
        return "```json\n{\"variants\":[{\"title\":\"Northwind autumn blend\",\"description\":\"The first bag "
               "ships free.\",\"cta\":\"Order now\"}]}\n```";
    return ok_content;
}

static cJSON *usage_json(void)
{
    cJSON *u = cJSON_CreateObject();

    cJSON_AddNumberToObject(u, "prompt_tokens", 321);
    cJSON_AddNumberToObject(u, "completion_tokens", 87);
    cJSON_AddNumberToObject(u, "total_tokens", 408);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"), "cached_tokens", 128);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"), "reasoning_tokens", 9);
    return u;
}

static cJSON *chunk(const char *model, unsigned id)
{
    cJSON *o = cJSON_CreateObject();
    char ids[64];

    snprintf(ids, sizeof(ids), "chatcmpl-double-%u", id);
    cJSON_AddStringToObject(o, "id", ids);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", 1767225600);
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "system_fingerprint", "fp_double");
    return o;
}

static void sse_event(struct conn *c, cJSON *o)
{
    char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    const char *data = s != NULL ? s : "[DONE]";
    char head[32];
    size_t n = strlen(data) + 8; /* "data: " + data + "\n\n" */

    snprintf(head, sizeof(head), "%zx\r\n", n);
    out_puts(c, head);
    out_puts(c, "data: ");
    out_puts(c, data);
    out_puts(c, "\n\n\r\n");
    free(s);
    cJSON_Delete(o);
}

static cJSON *delta_chunk(const char *model, unsigned id, const char *role, const char *text, size_t n,
                          const char *finish, bool usage_null)
{
    cJSON *o = chunk(model, id), *choices = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON *delta = cJSON_AddObjectToObject(ch, "delta");

    cJSON_AddNumberToObject(ch, "index", 0);
    if (role != NULL)
        cJSON_AddStringToObject(delta, "role", role);
    if (text != NULL) {
        char *t = strndup(text, n);

        cJSON_AddStringToObject(delta, "content", t);
        free(t);
    }
    cJSON_AddNullToObject(ch, "logprobs");
    if (finish != NULL)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    cJSON_AddItemToArray(choices, ch);
    if (usage_null)
        cJSON_AddNullToObject(o, "usage");
    return o;
}

static void stream_answer(struct conn *c, const char *model, unsigned id, bool include_usage)
{
    const char *content = content_for(model);
    size_t n = strlen(content), pieces = 0;
    bool broken = strcmp(model, "broken-stream") == 0;

    out_puts(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    sse_event(c, delta_chunk(model, id, "assistant", "", 0, NULL, include_usage));
    for (size_t i = 0; i < n;) {
        size_t len = n - i < 24 ? n - i : 24;

        /* Pieces end on a character boundary, as a provider's tokens do. */
        while (i + len < n && ((unsigned char)content[i + len] & 0xC0) == 0x80)
            len++;
        sse_event(c, delta_chunk(model, id, NULL, content + i, len, NULL, include_usage));
        i += len;
        if (broken && ++pieces == 3)
            return; /* the connection closes with the chunked body unfinished */
    }
    sse_event(c, delta_chunk(model, id, NULL, NULL, 0, "stop", include_usage));
    if (include_usage && strcmp(model, "ok-no-usage") != 0) {
        cJSON *o = chunk(model, id);

        cJSON_AddArrayToObject(o, "choices");
        cJSON_AddItemToObject(o, "usage", usage_json());
        sse_event(c, o);
    }
    sse_event(c, NULL);
    out_puts(c, "0\r\n\r\n");
}

static void json_answer(struct conn *c, const char *model, unsigned id)
{
    cJSON *o = cJSON_CreateObject(), *choices, *ch, *msg;
    char ids[64], *s;

    snprintf(ids, sizeof(ids), "chatcmpl-double-%u", id);
    cJSON_AddStringToObject(o, "id", ids);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", 1767225600);
    cJSON_AddStringToObject(o, "model", model);
    choices = cJSON_AddArrayToObject(o, "choices");
    ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", 0);
    msg = cJSON_AddObjectToObject(ch, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", content_for(model));
    cJSON_AddNullToObject(msg, "refusal");
    cJSON_AddNullToObject(ch, "logprobs");
    cJSON_AddStringToObject(ch, "finish_reason", "stop");
    cJSON_AddItemToArray(choices, ch);
    if (strcmp(model, "ok-no-usage") != 0)
        cJSON_AddItemToObject(o, "usage", usage_json());
    cJSON_AddStringToObject(o, "system_fingerprint", "fp_double");
    s = cJSON_PrintUnformatted(o);
    if (strcmp(model, "broken-stream") == 0) {
        char head[256];

        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: "
                 "close\r\n\r\n",
                 strlen(s));
        out_puts(c, head);
        out_put(c, s, strlen(s) / 2);
    } else {
        respond(c, 200, "OK", "application/json", NULL, s);
    }
    free(s);
    cJSON_Delete(o);
}

static void completions(struct conn *c, const char *auth, const char *body)
{
    cJSON *req;
    const cJSON *model, *messages, *stream, *so;
    bool streaming, include_usage = false;
    char want[600];
    unsigned n, k;
    const char *m;

    snprintf(want, sizeof(want), "Bearer %s", api_key);
    if (auth == NULL || strcmp(auth, want) != 0) {
        error_answer(c, 401, "Unauthorized", NULL, "Incorrect API key provided.", "invalid_request_error",
                     "invalid_api_key");
        return;
    }
    req = cJSON_Parse(body);
    model = cJSON_GetObjectItemCaseSensitive(req, "model");
    messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    stream = cJSON_GetObjectItemCaseSensitive(req, "stream");
    so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
    if (!cJSON_IsString(model) || !cJSON_IsArray(messages) || cJSON_GetArraySize(messages) < 1) {
        error_answer(c, 400, "Bad Request", NULL, "model and messages are required.", "invalid_request_error", NULL);
        cJSON_Delete(req);
        return;
    }
    for (const cJSON *msg = messages->child; msg != NULL; msg = msg->next) {
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "role")) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "content"))) {
            error_answer(c, 400, "Bad Request", NULL, "Each message needs a role and a content.",
                         "invalid_request_error", NULL);
            cJSON_Delete(req);
            return;
        }
    }
    streaming = cJSON_IsTrue(stream);
    if (so != NULL && !streaming) {
        error_answer(c, 400, "Bad Request", NULL,
                     "The 'stream_options' parameter is only allowed when 'stream' "
                     "is enabled.",
                     "invalid_request_error", NULL);
        cJSON_Delete(req);
        return;
    }
    include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    free(last_body);
    last_body = strdup(body);
    m = model->valuestring;
    n = count_model(m);
    if (strcmp(m, "http-500") == 0 || (sscanf(m, "fail-%u-then-ok", &k) == 1 && n <= k)) {
        error_answer(c, 500, "Internal Server Error", NULL, "The server had an error while processing your request.",
                     "server_error", NULL);
    } else if (strcmp(m, "http-400") == 0) {
        error_answer(c, 400, "Bad Request", NULL, "Invalid value for 'max_tokens'.", "invalid_request_error", NULL);
    } else if (strcmp(m, "http-429-then-ok") == 0 && n % 2 == 1) {
        error_answer(c, 429, "Too Many Requests", "Retry-After: 1\r\n", "Rate limit reached for requests.", "requests",
                     "rate_limit_exceeded");
    } else {
        if (strcmp(m, "slow") == 0)
            c->respond_at_ms = now_ms() + 3000;
        if (streaming)
            stream_answer(c, m, total, include_usage);
        else
            json_answer(c, m, total);
    }
    cJSON_Delete(req);
}

static void stats(struct conn *c)
{
    cJSON *o = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(o, "models");
    char *s;

    cJSON_AddNumberToObject(o, "total", total);
    for (unsigned i = 0; i < n_models; i++)
        cJSON_AddNumberToObject(m, models[i].name, models[i].count);
    s = cJSON_PrintUnformatted(o);
    respond(c, 200, "OK", "application/json", NULL, s);
    free(s);
    cJSON_Delete(o);
}

/* A whole request in c->in? Then build its response. */
static bool try_request(struct conn *c)
{
    char *end = strstr(c->in, "\r\n\r\n"), *auth = NULL, method[8], path[128];
    size_t clen = 0, head;

    if (end == NULL)
        return false;
    head = (size_t)(end - c->in) + 4;
    for (char *line = strstr(c->in, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "content-length:", 15) == 0)
            clen = strtoul(line + 15, NULL, 10);
        else if (strncasecmp(line, "authorization:", 14) == 0)
            auth = line + 14;
    }
    if (c->in_len < head + clen)
        return false;
    if (auth != NULL) {
        while (*auth == ' ')
            auth++;
        *strstr(auth, "\r\n") = '\0';
    }
    c->in[head + clen] = '\0';
    if (sscanf(c->in, "%7s %127s", method, path) != 2) {
        error_answer(c, 400, "Bad Request", NULL, "Malformed request.", "invalid_request_error", NULL);
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/chat/completions") == 0) {
        completions(c, auth, c->in + head);
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/stats") == 0) {
        stats(c);
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/last") == 0) {
        respond(c, 200, "OK", "application/json", NULL, last_body != NULL ? last_body : "null");
    } else {
        error_answer(c, 404, "Not Found", NULL, "Unknown path.", "invalid_request_error", NULL);
    }
    c->responding = true;
    return true;
}

static void drop(struct conn *c)
{
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int main(int argc, char **argv)
{
    struct conn conns[MAX_CONNS];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    signal(SIGPIPE, SIG_IGN); /* a client that timed out closes before its answer is written */
    if (argc > 1)
        api_key = argv[1];
    for (int i = 0; i < MAX_CONNS; i++) {
        memset(&conns[i], 0, sizeof(conns[i]));
        conns[i].fd = -1;
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("openai_double");
        return 1;
    }
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        struct pollfd pfd[MAX_CONNS + 2];
        int idx[MAX_CONNS + 2], np = 0, timeout = -1;
        long long now = now_ms();

        pfd[np] = (struct pollfd){.fd = lfd, .events = POLLIN};
        idx[np++] = -1;
        pfd[np] = (struct pollfd){.fd = 0, .events = POLLIN};
        idx[np++] = -2;
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &conns[i];

            if (c->fd < 0)
                continue;
            if (c->responding && c->respond_at_ms > now) {
                int wait = (int)(c->respond_at_ms - now);

                timeout = timeout < 0 || wait < timeout ? wait : timeout;
                continue;
            }
            pfd[np] = (struct pollfd){.fd = c->fd, .events = c->responding ? POLLOUT : POLLIN};
            idx[np++] = i;
        }
        if (poll(pfd, (nfds_t)np, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (int p = 0; p < np; p++) {
            if (pfd[p].revents == 0)
                continue;
            if (idx[p] == -1) {
                int fd = accept(lfd, NULL, NULL);
                int i;

                for (i = 0; fd >= 0 && i < MAX_CONNS && conns[i].fd >= 0; i++)
                    ;
                if (fd >= 0 && i == MAX_CONNS) {
                    close(fd);
                } else if (fd >= 0) {
                    conns[i].fd = fd;
                    conns[i].in = malloc(IN_CAP + 1);
                    if (conns[i].in == NULL)
                        abort();
                    conns[i].in[0] = '\0';
                }
            } else if (idx[p] == -2) {
                char b[64];

                if (read(0, b, sizeof(b)) <= 0) {
                    for (int i = 0; i < MAX_CONNS; i++)
                        if (conns[i].fd >= 0)
                            drop(&conns[i]);
                    free(last_body);
                    close(lfd);
                    return 0;
                }
            } else {
                struct conn *c = &conns[idx[p]];

                if (!c->responding) {
                    ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);

                    if (r <= 0) {
                        drop(c);
                        continue;
                    }
                    c->in_len += (size_t)r;
                    c->in[c->in_len] = '\0';
                    try_request(c);
                } else {
                    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

                    if (w <= 0) {
                        drop(c);
                        continue;
                    }
                    c->out_off += (size_t)w;
                    if (c->out_off == c->out_len)
                        drop(c);
                }
            }
        }
    }
}
