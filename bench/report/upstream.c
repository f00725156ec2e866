/*
 * bench/report/upstream.c -- the mock OpenAI upstream every gateway of
 * bench/report forwards to (bench code, not product code).
 *
 * One thread, epoll, HTTP/1.1 keep-alive (and pipelining), nothing read
 * from disk after start: it answers every POST with a fixed body, chosen
 * by the request body:
 *
 *   "stream":true (or "stream": true) in the body: the SSE file, sent as
 *       Content-Type: text/event-stream, Transfer-Encoding: chunked, one
 *       HTTP chunk per event (as OpenAI frames it), all in one write;
 *   otherwise: the JSON file, Content-Type: application/json with a
 *       Content-Length.
 *
 * Every answer carries X-Bench-Credential: injected when the request's
 * Authorization was "Bearer <credential>", other otherwise, so the bench
 * can check which gateway injected the provider credential.
 *
 * Usage: upstream PORT CREDENTIAL RESPONSE.json STREAM.sse
 * Listens on 127.0.0.1:PORT.  Runs until killed.
 *
 * Why not nginx (as bench/gateway uses): nginx cannot pick its answer by
 * the request body without a scripting module, and the streaming and
 * non-streaming calls of an OpenAI client go to the same path.  This does
 * a few microseconds of work per request, far less than any gateway.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQ_MAX (4u << 20)      /* a request larger than this: close */

typedef struct {
    int     fd;
    char   *in;                 /* bytes read, not yet answered */
    size_t  in_len, in_cap;
    char   *out;                /* answer bytes not yet written */
    size_t  out_len, out_off, out_cap;
    int     closing;            /* close once out is written */
    int     want_out;           /* EPOLLOUT is in the interest set */
} conn_t;

/* the four answers: [stream][injected] */
static char   *answer[2][2];
static size_t  answer_len[2][2];
static char    bearer[512];

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long  n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
        die(path);
    buf = malloc((size_t) n + 1);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n)
        die(path);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t) n;
    return buf;
}

static void append(char **buf, size_t *len, size_t *cap, const char *p,
                   size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n)
            c *= 2;
        *buf = realloc(*buf, c);
        if (*buf == NULL)
            die("realloc");
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void make_answers(const char *json, size_t json_len, const char *sse,
                         size_t sse_len)
{
    char   head[256];
    int    s, inj, n;

    for (inj = 0; inj < 2; inj++) {
        const char *cred = inj ? "injected" : "other";
        size_t      cap = 0, len = 0;
        char       *b = NULL;

        n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nX-Bench-Credential: %s\r\n\r\n",
                     json_len, cred);
        append(&b, &len, &cap, head, (size_t) n);
        append(&b, &len, &cap, json, json_len);
        answer[0][inj] = b;
        answer_len[0][inj] = len;

        b = NULL; len = 0; cap = 0;
        n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                     "X-Bench-Credential: %s\r\n\r\n", cred);
        append(&b, &len, &cap, head, (size_t) n);
        /* one chunk per event: an event ends with a blank line */
        for (s = 0; (size_t) s < sse_len;) {
            const char *end = memmem(sse + s, sse_len - (size_t) s, "\n\n", 2);
            size_t      ev = end ? (size_t) (end - (sse + s)) + 2
                                 : sse_len - (size_t) s;
            n = snprintf(head, sizeof head, "%zx\r\n", ev);
            append(&b, &len, &cap, head, (size_t) n);
            append(&b, &len, &cap, sse + s, ev);
            append(&b, &len, &cap, "\r\n", 2);
            s += (int) ev;
        }
        append(&b, &len, &cap, "0\r\n\r\n", 5);
        answer[1][inj] = b;
        answer_len[1][inj] = len;
    }
}

/* the value of header NAME (lowercase, with ':') in head, or NULL */
static const char *header(const char *head, size_t head_len, const char *name,
                          size_t *vlen)
{
    size_t      nl = strlen(name);
    const char *p = memchr(head, '\n', head_len), *end = head + head_len;

    while (p != NULL && p + 1 < end) {
        const char *line = p + 1, *eol = memchr(line, '\n', (size_t) (end - line));
        size_t      i;

        if (eol == NULL)
            eol = end;
        if ((size_t) (eol - line) > nl) {
            for (i = 0; i < nl; i++)
                if (tolower((unsigned char) line[i]) != name[i])
                    break;
            if (i == nl) {
                const char *v = line + nl, *ve = eol;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                    ve--;
                *vlen = (size_t) (ve - v);
                return v;
            }
        }
        p = eol;
    }
    return NULL;
}

static int has_token(const char *v, size_t vlen, const char *tok)
{
    size_t tl = strlen(tok), i, j;

    for (i = 0; i + tl <= vlen; i++) {
        for (j = 0; j < tl; j++)
            if (tolower((unsigned char) v[i + j]) != tok[j])
                break;
        if (j == tl)
            return 1;
    }
    return 0;
}

/*
 * One request at the start of c->in: 1 answered (consumed bytes in *used),
 * 0 incomplete, -1 malformed.
 */
static int one_request(conn_t *c, size_t *used)
{
    const char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    const char *v, *body;
    size_t      head_len, vlen, blen = 0, total;
    int         stream, inj, chunked = 0;
    static char *dechunked;
    static size_t dc_cap;

    if (hend == NULL)
        return c->in_len > 65536 ? -1 : 0;
    head_len = (size_t) (hend - c->in) + 4;

    if ((v = header(c->in, head_len, "transfer-encoding:", &vlen)) != NULL
        && has_token(v, vlen, "chunked"))
        chunked = 1;
    else if ((v = header(c->in, head_len, "content-length:", &vlen)) != NULL) {
        size_t i;
        for (i = 0; i < vlen; i++) {
            if (!isdigit((unsigned char) v[i]))
                return -1;
            blen = blen * 10 + (size_t) (v[i] - '0');
            if (blen > REQ_MAX)
                return -1;
        }
    }

    body = c->in + head_len;
    if (!chunked) {
        if (c->in_len - head_len < blen)
            return 0;
        total = head_len + blen;
    } else {
        /* decode into a scratch buffer: size CRLF data CRLF ... 0 CRLF CRLF */
        const char *p = body, *end = c->in + c->in_len;
        size_t      dl = 0;
        for (;;) {
            const char *crlf = memmem(p, (size_t) (end - p), "\r\n", 2);
            size_t      n = 0;
            if (crlf == NULL)
                return 0;
            for (v = p; v < crlf && isxdigit((unsigned char) *v); v++) {
                n = n * 16 + (size_t) (isdigit((unsigned char) *v) ? *v - '0'
                                       : (tolower((unsigned char) *v) - 'a' + 10));
                if (n > REQ_MAX)
                    return -1;
            }
            p = crlf + 2;
            if (n == 0) {       /* no trailers expected */
                if (end - p < 2)
                    return 0;
                p += 2;
                break;
            }
            if ((size_t) (end - p) < n + 2)
                return 0;
            if (dl + n > dc_cap) {
                dc_cap = (dl + n) * 2;
                dechunked = realloc(dechunked, dc_cap);
                if (dechunked == NULL)
                    die("realloc");
            }
            memcpy(dechunked + dl, p, n);
            dl += n;
            p += n + 2;
        }
        total = (size_t) (p - c->in);
        body = dechunked;
        blen = dl;
    }

    stream = memmem(body, blen, "\"stream\":true", 13) != NULL
             || memmem(body, blen, "\"stream\": true", 14) != NULL;
    v = header(c->in, head_len, "authorization:", &vlen);
    inj = v != NULL && vlen == strlen(bearer) && memcmp(v, bearer, vlen) == 0;
    if ((v = header(c->in, head_len, "connection:", &vlen)) != NULL
        && has_token(v, vlen, "close"))
        c->closing = 1;

    append(&c->out, &c->out_len, &c->out_cap, answer[stream][inj],
           answer_len[stream][inj]);
    *used = total;
    return 1;
}

static int flush_out(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        c->out_off += (size_t) n;
    }
    c->out_off = c->out_len = 0;
    return 1;
}

static void close_conn(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct epoll_event ev, evs[256];
    size_t json_len, sse_len;
    char  *json, *sse;
    int    ls, ep, one = 1, i, n, port;

    if (argc != 5) {
        fprintf(stderr, "usage: upstream PORT CREDENTIAL RESPONSE.json STREAM.sse\n");
        return 2;
    }
    port = atoi(argv[1]);
    snprintf(bearer, sizeof bearer, "Bearer %s", argv[2]);
    json = slurp(argv[3], &json_len);
    sse = slurp(argv[4], &sse_len);
    make_answers(json, json_len, sse, sse_len);
    signal(SIGPIPE, SIG_IGN);

    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (ls < 0)
        die("socket");
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *) &sa, sizeof sa) < 0)
        die("bind");
    if (listen(ls, 4096) < 0)
        die("listen");
    ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
        die("epoll_ctl");

    for (;;) {
        n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;

            if (c == NULL) {            /* the listener */
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (c == NULL)
                        die("calloc");
                    c->fd = fd;
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.ptr = c;
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                        die("epoll_ctl");
                }
                continue;
            }

            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                int eof = 0;
                for (;;) {
                    ssize_t r;
                    if (c->in_cap - c->in_len < 16384) {
                        size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
                        if (cap > REQ_MAX + 65536) {
                            eof = 1;
                            break;
                        }
                        c->in = realloc(c->in, cap);
                        if (c->in == NULL)
                            die("realloc");
                        c->in_cap = cap;
                    }
                    r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
                    if (r > 0) {
                        c->in_len += (size_t) r;
                        continue;
                    }
                    if (r == 0)
                        eof = 1;
                    else if (errno == EINTR)
                        continue;
                    else if (errno != EAGAIN)
                        eof = 1;
                    break;
                }
                for (;;) {
                    size_t used = 0;
                    int    rc = one_request(c, &used);
                    if (rc < 0) {
                        eof = 1;
                        break;
                    }
                    if (rc == 0)
                        break;
                    memmove(c->in, c->in + used, c->in_len - used);
                    c->in_len -= used;
                    if (c->closing)
                        break;
                }
                if (c->out_len > 0) {
                    int w = flush_out(c);
                    if (w < 0) {
                        close_conn(ep, c);
                        continue;
                    }
                    if (w == 0 && !c->want_out) {
                        c->want_out = 1;
                        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
                        ev.data.ptr = c;
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    }
                    if (w == 0)
                        continue;
                }
                if (c->want_out) {
                    c->want_out = 0;
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
                if (eof || c->closing)
                    close_conn(ep, c);
                continue;
            }

            if (evs[i].events & EPOLLOUT) {
                int w = flush_out(c);
                if (w < 0 || (w > 0 && c->closing)) {
                    close_conn(ep, c);
                    continue;
                }
                if (w > 0) {
                    c->want_out = 0;
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
}
