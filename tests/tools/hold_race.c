/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A free and an open of one file at once on two nodes of a cluster, for the
 * Galera test:
 *   hold_race URL_A URL_B
 * URL_A and URL_B name one MySQL-store volume through two different nodes.
 * A creates a file, held open by A, and removes its last name. Then A's last
 * close (ns_reclaim_txn, the work of ns_unhold) runs in a transaction that
 * has read the file's holds and found none of another mount's; before it
 * commits, B opens the file (ns_hold), in its own transaction through the
 * other node, which commits first. A's transaction must not then commit the
 * free: it is retried, finds B's hold, and keeps the file, which B reads and
 * at its own last close frees. Exit 0 when so, 1 (with what went wrong)
 * when not, 2 when the volume cannot be used.
 */
#include "metadata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct mfs_volume *va, *vb;
static uint64_t ino;
static int attempts;
static bool freed;

static void fail(const char *what, int rc)
{
	fprintf(stderr, "hold_race: %s%s%s\n", what, rc ? ": " : "", rc ? strerror(-rc) : "");
	exit(1);
}

/* A's last close; on its first run, B's open lands in between */
static int close_on_a(struct store_txn *t, void *arg)
{
	(void)arg;
	attempts++;
	int rc = ns_reclaim_txn(t, va, ino, &freed);
	if (rc || attempts > 1)
		return rc;
	struct inode_rec in;
	int hrc = ns_hold(vb, ino, &in);
	if (hrc)
		fail("B could not open the file while A's close was under way", hrc);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hold_race URL_A URL_B\n");
		return 2;
	}
	char err[512];
	if (mfs_open(argv[1], 0, &va, err, sizeof err) || mfs_open(argv[2], 0, &vb, err, sizeof err)) {
		fprintf(stderr, "hold_race: %s\n", err);
		return 2;
	}
	struct mfs_ctx c = { 0, 0, (uint32_t)getpid() };
	char name[64];
	snprintf(name, sizeof name, "hold-race-%d", (int)getpid());
	struct inode_rec in;
	struct ns_unlinked gone;
	int rc = ns_create_held(va, &c, MFS_ROOT_INO, name, S_IFREG | 0644, &in);
	if (rc)
		fail("A could not create the file", rc);
	ino = in.ino;
	if ((rc = ns_unlink(va, &c, MFS_ROOT_INO, name, &gone)))
		fail("A could not remove the file", rc);
	if (gone.ino != ino || gone.nlink != 0)
		fail("the removal left the file with names", 0);

	if ((rc = ns_txn_run(va, close_on_a, NULL)))
		fail("A's close failed", rc);
	printf("A's close ran %d time%s and %s the file\n", attempts, attempts == 1 ? "" : "s",
	       freed ? "freed" : "kept");
	if (freed)
		fail("A freed the file that B had opened meanwhile", 0);
	if (attempts < 2)
		fail("A's close was not retried after B's open", 0);
	if ((rc = ns_getattr(vb, ino, &in)))
		fail("B lost the file it has open", rc);
	if (in.nlink != 0)
		fail("the file has names again", 0);

	bool bfreed = false;
	if ((rc = ns_unhold(vb, ino, &bfreed)))
		fail("B's close failed", rc);
	if (!bfreed)
		fail("B's last close did not free the file", 0);
	if ((rc = ns_getattr(va, ino, &in)) != -ENOENT)
		fail("the file is still there after both closes", rc);
	mfs_close(vb);
	mfs_close(va);
	return 0;
}
