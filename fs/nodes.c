/* SPDX-License-Identifier: Apache-2.0 */
#include "nodes.h"
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int nodes_init(struct node_table *t)
{
	pthread_mutex_init(&t->lock, NULL);
	t->nslots = 4096;
	t->count = 0;
	t->drop = NULL;
	t->drop_arg = NULL;
	t->slots = calloc(t->nslots, sizeof *t->slots);
	return t->slots ? 0 : -ENOMEM;
}

static void node_free(struct node_table *t, struct node *n)
{
	if (t->drop)
		t->drop(n, t->drop_arg);
	wbuf_clear(&n->buf);
	free(n->buf.v);
	free(n->name);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void nodes_fini(struct node_table *t)
{
	for (size_t i = 0; i < t->nslots; i++) {
		struct node *n = t->slots[i];
		while (n) {
			struct node *next = n->next;
			node_free(t, n);
			n = next;
		}
	}
	free(t->slots);
	pthread_mutex_destroy(&t->lock);
}

static size_t slot_of(const struct node_table *t, uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 20) & (t->nslots - 1);
}

static void grow(struct node_table *t)
{
	size_t nslots = t->nslots * 2;
	struct node **slots = calloc(nslots, sizeof *slots);
	if (!slots)
		return; /* keep the longer chains */
	struct node_table nt = { .slots = slots, .nslots = nslots };
	for (size_t i = 0; i < t->nslots; i++) {
		struct node *n = t->slots[i];
		while (n) {
			struct node *next = n->next;
			size_t s = slot_of(&nt, n->ino);
			n->next = slots[s];
			slots[s] = n;
			n = next;
		}
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
}

struct node *node_get(struct node_table *t, uint64_t ino, bool create)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = t->slots[slot_of(t, ino)];
	while (n && n->ino != ino)
		n = n->next;
	if (!n && create) {
		n = calloc(1, sizeof *n);
		if (n) {
			n->ino = ino;
			pthread_mutex_init(&n->lock, NULL);
			if (t->count >= t->nslots)
				grow(t);
			size_t s = slot_of(t, ino);
			n->next = t->slots[s];
			t->slots[s] = n;
			t->count++;
		}
	}
	if (n)
		n->refs++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void node_add_lookup(struct node_table *t, struct node *n)
{
	pthread_mutex_lock(&t->lock);
	n->nlookup++;
	pthread_mutex_unlock(&t->lock);
}

void node_add_open(struct node_table *t, struct node *n)
{
	pthread_mutex_lock(&t->lock);
	n->nopen++;
	pthread_mutex_unlock(&t->lock);
}

bool node_known(struct node_table *t, uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = t->slots[slot_of(t, ino)];
	while (n && n->ino != ino)
		n = n->next;
	bool known = n && n->nlookup > 0;
	pthread_mutex_unlock(&t->lock);
	return known;
}

void node_mark_unlinked(struct node_table *t, uint64_t ino, bool *known)
{
	pthread_mutex_lock(&t->lock);
	struct node *n = t->slots[slot_of(t, ino)];
	while (n && n->ino != ino)
		n = n->next;
	if (n)
		n->unlinked = true;
	*known = n != NULL;
	pthread_mutex_unlock(&t->lock);
}

bool node_put(struct node_table *t, struct node *n, uint64_t forget, uint32_t close)
{
	pthread_mutex_lock(&t->lock);
	n->refs--;
	n->nlookup = forget > n->nlookup ? 0 : n->nlookup - forget;
	n->nopen = close > n->nopen ? 0 : n->nopen - close;
	bool gone = n->refs == 0 && n->nlookup == 0 && n->nopen == 0;
	bool reclaim = false;
	if (gone) {
		struct node **pp = &t->slots[slot_of(t, n->ino)];
		while (*pp != n)
			pp = &(*pp)->next;
		*pp = n->next;
		t->count--;
		reclaim = n->unlinked;
	}
	pthread_mutex_unlock(&t->lock);
	if (gone)
		node_free(t, n);
	return reclaim;
}

void nodes_each(struct node_table *t, void (*fn)(struct node *n, void *arg), void *arg)
{
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nslots; i++)
		for (struct node *n = t->slots[i]; n; n = n->next)
			fn(n, arg);
	pthread_mutex_unlock(&t->lock);
}

/* ---------------------------------------------------------------- write buffer */

static int ext_reserve(struct extent *e, size_t len)
{
	if (len <= e->cap)
		return 0;
	size_t cap = e->cap ? e->cap : 4096;
	while (cap < len)
		cap *= 2;
	char *d = realloc(e->data, cap);
	if (!d)
		return -ENOMEM;
	e->data = d;
	e->cap = cap;
	return 0;
}

int wbuf_add(struct wbuf *b, uint64_t off, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	uint64_t end = off + len;
	/* extents [i, j) touch or overlap the new bytes */
	size_t i = 0;
	while (i < b->n && b->v[i].off + b->v[i].len < off)
		i++;
	size_t j = i;
	while (j < b->n && b->v[j].off <= end)
		j++;

	if (j == i) { /* nothing touched: insert a new extent at i */
		if (mfs_array_reserve(&b->v, &b->cap, b->n, sizeof *b->v))
			return -ENOMEM;
		struct extent e = { .off = off };
		if (ext_reserve(&e, len))
			return -ENOMEM;
		memcpy(e.data, data, len);
		e.len = len;
		memmove(&b->v[i + 1], &b->v[i], (b->n - i) * sizeof *b->v);
		b->v[i] = e;
		b->n++;
		b->bytes += len;
	} else {
		/* merge into the first touched extent, which grows to cover all */
		struct extent *f = &b->v[i];
		uint64_t lo = off < f->off ? off : f->off;
		uint64_t hi = end;
		if (b->v[j - 1].off + b->v[j - 1].len > hi)
			hi = b->v[j - 1].off + b->v[j - 1].len;
		size_t before = b->bytes;
		for (size_t k = i; k < j; k++)
			before -= b->v[k].len;
		if (lo < f->off) {
			/* growing downwards: shift the first extent's bytes up */
			size_t shift = (size_t)(f->off - lo);
			if (ext_reserve(f, (size_t)(hi - lo)))
				return -ENOMEM;
			memmove(f->data + shift, f->data, f->len);
			f->off = lo;
			f->len += shift;
		} else if (ext_reserve(f, (size_t)(hi - lo))) {
			return -ENOMEM;
		}
		for (size_t k = i + 1; k < j; k++) {
			memcpy(f->data + (b->v[k].off - lo), b->v[k].data, b->v[k].len);
			free(b->v[k].data);
		}
		memcpy(f->data + (off - lo), data, len);
		f->len = (size_t)(hi - lo);
		memmove(&b->v[i + 1], &b->v[j], (b->n - j) * sizeof *b->v);
		b->n -= j - i - 1;
		b->bytes = before + f->len;
	}
	if (end > b->end)
		b->end = end;
	return 0;
}

void wbuf_overlay(const struct wbuf *b, uint64_t off, char *buf, size_t len)
{
	uint64_t end = off + len;
	for (size_t i = 0; i < b->n; i++) {
		const struct extent *e = &b->v[i];
		uint64_t lo = e->off > off ? e->off : off;
		uint64_t hi = e->off + e->len < end ? e->off + e->len : end;
		if (lo < hi)
			memcpy(buf + (lo - off), e->data + (lo - e->off), (size_t)(hi - lo));
	}
}

void wbuf_clear(struct wbuf *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].data);
	b->n = 0;
	b->bytes = 0;
	b->end = 0;
}
