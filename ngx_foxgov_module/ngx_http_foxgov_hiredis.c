
/*
 * ngx_http_foxgov_hiredis.c -- hiredis's async context on nginx's event
 * loop, for both evidence transports (ngx_http_foxgov_redis.c, one
 * connection per worker; ngx_http_foxgov_cluster.c, one per node).
 *
 * The context's fd is wrapped in an ngx_connection_t for its events,
 * level-triggered (hiredis reads once per call).  ac->ev.data is the
 * adapter; the transport's own callbacks find their owner in ac->data.
 * When the transport gives a "send" event, a command queued while
 * connected is not given a write event: the send event (posted, or the
 * transport's flush) writes it, and the write event is added only when
 * the socket did not take it all.  The cleanup callback takes the events
 * away and never closes the fd (hiredis does).
 */


#include "ngx_http_foxgov_common.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


static void
ngx_http_foxgov_hiredis_event(ngx_event_t *ev)
{
    ngx_connection_t           *c = ev->data;
    ngx_http_foxgov_hiredis_t  *h = c->data;

    if (h->ac == NULL) {
        return;
    }

    if (ev->write) {
        ngx_http_foxgov_hiredis_write(h);
    } else {
        redisAsyncHandleRead(h->ac);
    }
}


static void
ngx_http_foxgov_hiredis_add(ngx_event_t *ev, ngx_int_t event)
{
    if (!ev->active) {
        /* level-triggered: hiredis reads and writes once per call */
        (void) ngx_add_event(ev, event, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_foxgov_hiredis_del(ngx_event_t *ev, ngx_int_t event)
{
    if (ev->active) {
        (void) ngx_del_event(ev, event, 0);
    }
}


static void
ngx_http_foxgov_hiredis_add_read(void *data)
{
    ngx_http_foxgov_hiredis_t  *h = data;

    ngx_http_foxgov_hiredis_add(h->c->read, NGX_READ_EVENT);
}


static void
ngx_http_foxgov_hiredis_del_read(void *data)
{
    ngx_http_foxgov_hiredis_t  *h = data;

    ngx_http_foxgov_hiredis_del(h->c->read, NGX_READ_EVENT);
}


/*
 * hiredis asks for a write event whenever a command is queued.  While
 * connecting, inside a write of ours (the socket did not take it all), or
 * without a send event, it gets one; otherwise what is queued is written
 * by the send event, posted to the end of this turn of the event loop
 * (or earlier by the transport's flush), with no event added and removed
 * per command.
 */
static void
ngx_http_foxgov_hiredis_add_write(void *data)
{
    ngx_http_foxgov_hiredis_t  *h = data;

    if (h->send == NULL || h->writing || h->ac == NULL
        || !(h->ac->c.flags & REDIS_CONNECTED))
    {
        ngx_http_foxgov_hiredis_add(h->c->write, NGX_WRITE_EVENT);
        return;
    }

    if (!h->send->posted) {
        ngx_post_event(h->send, &ngx_posted_events);
    }
}


static void
ngx_http_foxgov_hiredis_del_write(void *data)
{
    ngx_http_foxgov_hiredis_t  *h = data;

    ngx_http_foxgov_hiredis_del(h->c->write, NGX_WRITE_EVENT);
}


/* hiredis is done with the context: its fd is closed by hiredis, not us */
static void
ngx_http_foxgov_hiredis_cleanup(void *data)
{
    ngx_http_foxgov_hiredis_t  *h = data;

    if (h->c == NULL) {
        return;
    }

    ngx_http_foxgov_hiredis_del(h->c->read, NGX_READ_EVENT);
    ngx_http_foxgov_hiredis_del(h->c->write, NGX_WRITE_EVENT);

    /* a posted event of this connection must not run once it is free */
    if (h->c->read->posted) {
        ngx_delete_posted_event(h->c->read);
    }
    if (h->c->write->posted) {
        ngx_delete_posted_event(h->c->write);
    }
    if (h->send != NULL && h->send->posted) {
        ngx_delete_posted_event(h->send);
    }

    ngx_free_connection(h->c);      /* reads c->fd: clear it afterwards */
    h->c->fd = (ngx_socket_t) -1;
    h->c = NULL;
}


ngx_int_t
ngx_http_foxgov_hiredis_attach(ngx_http_foxgov_hiredis_t *h,
    redisAsyncContext *ac, void *owner, ngx_log_t *log)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = h;
    c->read->handler = ngx_http_foxgov_hiredis_event;
    c->write->handler = ngx_http_foxgov_hiredis_event;
    c->read->log = log;
    c->write->log = log;

    h->c = c;
    h->ac = ac;
    h->writing = 0;

    ac->data = owner;
    ac->ev.data = h;
    ac->ev.addRead = ngx_http_foxgov_hiredis_add_read;
    ac->ev.delRead = ngx_http_foxgov_hiredis_del_read;
    ac->ev.addWrite = ngx_http_foxgov_hiredis_add_write;
    ac->ev.delWrite = ngx_http_foxgov_hiredis_del_write;
    ac->ev.cleanup = ngx_http_foxgov_hiredis_cleanup;

    /* the connect completes when the socket is writable */
    ngx_http_foxgov_hiredis_add(c->write, NGX_WRITE_EVENT);

    return NGX_OK;
}


void
ngx_http_foxgov_hiredis_write(ngx_http_foxgov_hiredis_t *h)
{
    if (h->ac == NULL) {
        return;
    }

    /* a failed write calls back and may end the context */
    h->writing = 1;
    redisAsyncHandleWrite(h->ac);
    h->writing = 0;
}


size_t
ngx_http_foxgov_hiredis_unwritten(ngx_http_foxgov_hiredis_t *h)
{
    return (h->ac != NULL && h->ac->c.obuf != NULL)
           ? sdslen(h->ac->c.obuf) : 0;
}
