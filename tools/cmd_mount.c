/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metafs mount: checks the arguments, then serves the volume. Without -f the
 * daemon is a child that opens the volume itself (the volume's lock belongs
 * to the process that serves it) and tells the waiting parent over a pipe
 * whether the mount is up, so that errors reach the terminal and the command
 * returns only once the mountpoint works.
 */
#include "tools.h"
#include "fs.h"
#include "indexer.h"
#include "search.h"
#include "metadata.h"
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Options meant for mount(8) or fstab, not for FUSE. */
static bool mount_only_option(const char *o)
{
	static const char *const drop[] = { "defaults", "auto", "noauto", "nofail", "_netdev",
					    "user", "users", "nouser", "owner", "group" };
	for (size_t i = 0; i < MFS_ARRAY_LEN(drop); i++)
		if (!strcmp(o, drop[i]))
			return true;
	return !strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8);
}

/* metafs's own -o options */
static bool opt_noindex;
static struct mfs_fs_opts fs_opts = { .lineage = true, .entry_timeout = -1, .attr_timeout = -1,
				      .negative_timeout = -1 };

/* -o NAME=SECONDS; 1 when o is not NAME=, -1 when the value is bad */
static int timeout_option(const char *o, const char *name, double *out)
{
	size_t n = strlen(name);
	if (strncmp(o, name, n) || o[n] != '=')
		return 1;
	char *end;
	double v = strtod(o + n + 1, &end);
	if (end == o + n + 1 || *end || !(v >= 0 && v <= 86400)) {
		die_msg("-o %s: give a number of seconds from 0 to 86400", o);
		return -1;
	}
	*out = v;
	return 0;
}

static int add_options(struct fuse_args *args, const char *list)
{
	char *copy = strdup(list);
	if (!copy)
		return -1;
	int rc = 0;
	for (char *save = NULL, *o = strtok_r(copy, ",", &save); o && !rc; o = strtok_r(NULL, ",", &save)) {
		if (mount_only_option(o))
			continue;
		if (!strcmp(o, "noindex")) {
			opt_noindex = true;
			continue;
		}
		if (!strcmp(o, "nolineage")) {
			fs_opts.lineage = false;
			continue;
		}
		if (!strcmp(o, "strict")) {
			fs_opts.strict = true;
			continue;
		}
		int t = timeout_option(o, "entry_timeout", &fs_opts.entry_timeout);
		if (t > 0)
			t = timeout_option(o, "attr_timeout", &fs_opts.attr_timeout);
		if (t > 0)
			t = timeout_option(o, "negative_timeout", &fs_opts.negative_timeout);
		if (t < 0) {
			rc = -1;
			break;
		}
		if (t == 0)
			continue;
		if (!strncmp(o, "fsname=", 7) || !strncmp(o, "subtype=", 8)) {
			die_msg("-o %s: metafs sets this itself", o);
			rc = -1;
			break;
		}
		char *arg = malloc(strlen(o) + 3);
		if (!arg) {
			rc = -1;
			break;
		}
		sprintf(arg, "-o%s", o);
		rc = fuse_opt_add_arg(args, arg);
		free(arg);
	}
	free(copy);
	return rc;
}

static int check_mountpoint(const char *mnt)
{
	struct stat st;
	if (stat(mnt, &st) != 0) {
		die_msg("%s: cannot use as mountpoint: %s", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		die_msg("%s: the mountpoint is not a directory", mnt);
		return -1;
	}
	DIR *d = opendir(mnt);
	if (!d) {
		die_msg("%s: cannot read the mountpoint: %s", mnt, strerror(errno));
		return -1;
	}
	struct dirent *e;
	bool empty = true;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	if (!empty) {
		die_msg("%s: the mountpoint is not empty; mount on an empty directory", mnt);
		return -1;
	}
	return 0;
}

/* Opens, mounts and serves; reports readiness or an error on report_fd. */
static int serve(const char *vol, const char *mnt, struct fuse_args *args, int report_fd, bool daemon)
{
	char err[1024] = "";
	struct mfs_volume *v;
	int rc = mfs_open(vol, 0, &v, err, sizeof err);
	if (rc) {
		if (report_fd >= 0)
			dprintf(report_fd, "%s", err);
		else
			die_msg("%s", err);
		return 1;
	}
	if (daemon) {
		char logpath[PATH_MAX + 16], dir[PATH_MAX];
		if (mfs_local_dir(vol, dir, sizeof dir) == 0) {
			snprintf(logpath, sizeof logpath, "%s/metafs.log", dir);
			mfs_log_to_file(logpath);
		}
	}
	rc = ns_reclaim_orphans(v);
	if (rc > 0)
		log_info("freed %d inodes left unlinked by an earlier run", rc);
	else if (rc < 0)
		log_warn("cannot free inodes left unlinked by an earlier run: %s", strerror(-rc));

	struct mfs_fs *fs;
	rc = mfs_fs_create(v, args, &fs_opts, &fs);
	if (!rc) {
		rc = mfs_fs_mount(fs, mnt);
		if (rc) {
			mfs_fs_destroy(fs);
			fs = NULL;
		}
	}
	if (rc) {
		snprintf(err, sizeof err, "%s: cannot mount (bad -o option, or no access to /dev/fuse?)", mnt);
		if (report_fd >= 0)
			dprintf(report_fd, "%s", err);
		else
			die_msg("%s", err);
		mfs_close(v);
		return 1;
	}
	log_info("serving %s at %s", vol, mnt);
	struct indexer_thread *ixt = NULL;
	if (!opt_noindex) {
		char ipath[PATH_MAX];
		indexer_default_path(vol, ipath, sizeof ipath);
		if (indexer_thread_start(v, ipath, &ixt))
			log_error("cannot start the indexer; search will lag until `metafs indexer %s` runs", vol);
	}
	struct search_service *svc = NULL;
	rc = search_service_start(v, vol, &svc);
	if (rc)
		log_error("cannot start the search service (%s): users who cannot read %s/index.sqlite cannot "
			  "search this volume", strerror(-rc), vol);
	if (report_fd >= 0) {
		/* ready: an empty report; then leave the terminal */
		close(report_fd);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		if (chdir("/") != 0)
			log_warn("cannot chdir to /: %s", strerror(errno));
	}
	rc = mfs_fs_run(fs);
	mfs_fs_destroy(fs);
	search_service_stop(svc);
	/* after the last flush, so the index holds everything committed */
	indexer_thread_stop(ixt);
	mfs_close(v);
	log_info("stopped serving %s", vol);
	return rc ? 1 : 0;
}

int cmd_mount(int argc, char **argv)
{
	bool foreground = false, debug = false;
	const char *pos[2] = { NULL, NULL };
	int npos = 0;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	if (fuse_opt_add_arg(&args, "metafs") != 0)
		return 1;
	/* options may come before or after the two paths (mount(8) puts -o last) */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: metafs mount VOLUME MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
			       "  -f          stay in the foreground (default: run as a daemon, logging\n"
			       "              to VOLUME/metafs.log, or for a cluster volume to metafs.log in\n"
			       "              its local directory, once the mount is ready)\n"
			       "  -d          FUSE debug output (implies -f)\n"
			       "  -o OPTIONS  FUSE mount options, e.g. allow_other, ro; and metafs's own:\n"
			       "              noindex    do not run the search indexer in the daemon\n"
			       "              nolineage  do not record which processes read and wrote\n"
			       "                         which files (see metafs lineage)\n"
			       "              entry_timeout=S, attr_timeout=S, negative_timeout=S\n"
			       "                         seconds the kernel caches names, attributes and\n"
			       "                         names found absent (default 1, 1, and 1 or, on a\n"
			       "                         volume other mounts share, 0)\n"
			       "              strict     cache nothing: a change another mount makes shows\n"
			       "                         at once (all three timeouts 0)\n"
			       "  A volume in a MySQL cluster may be mounted on many hosts at once. Each\n"
			       "  mount follows the others' changes and drops what the kernel cached of\n"
			       "  them within about 0.1 s; a file closed on one mount is seen whole by an\n"
			       "  open on another (close-to-open).\n"
			       "  Permission bits are always checked by the kernel (default_permissions).\n"
			       "  Unmount with: fusermount3 -u MOUNTPOINT\n");
			fuse_opt_free_args(&args);
			return 0;
		} else if (!strcmp(a, "-f")) {
			foreground = true;
		} else if (!strcmp(a, "-d")) {
			debug = foreground = true;
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			if (add_options(&args, argv[++i])) {
				fuse_opt_free_args(&args);
				return 2;
			}
		} else if (!strncmp(a, "-o", 2) && a[2]) {
			if (add_options(&args, a + 2)) {
				fuse_opt_free_args(&args);
				return 2;
			}
		} else if (!strcmp(a, "-n") || !strcmp(a, "-s") || !strcmp(a, "-v")) {
			/* mount(8) helper flags: nothing to do */
		} else if (a[0] == '-' && a[1]) {
			die_msg("mount: unknown option %s (try: metafs mount --help)", a);
			fuse_opt_free_args(&args);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			die_msg("mount: too many arguments (usage: metafs mount VOLUME MOUNTPOINT)");
			fuse_opt_free_args(&args);
			return 2;
		}
	}
	if (npos != 2) {
		die_msg("usage: metafs mount VOLUME MOUNTPOINT [-f] [-o OPTIONS]");
		fuse_opt_free_args(&args);
		return 2;
	}
	if (debug)
		fuse_opt_add_arg(&args, "-odebug");
	char vol[PATH_MAX], mnt[PATH_MAX];
	if (!strncmp(pos[0], "mysql://", 8))
		snprintf(vol, sizeof vol, "%s", pos[0]);
	else if (!realpath(pos[0], vol)) {
		die_msg("%s: no such volume (create one with: metafs format %s)", pos[0], pos[0]);
		fuse_opt_free_args(&args);
		return 1;
	}
	if (check_mountpoint(pos[1]) || !realpath(pos[1], mnt)) {
		fuse_opt_free_args(&args);
		return 1;
	}

	int rc;
	if (foreground) {
		rc = serve(vol, mnt, &args, -1, false);
		fuse_opt_free_args(&args);
		return rc;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		die_msg("cannot create a pipe: %s", strerror(errno));
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		die_msg("cannot fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		setsid();
		rc = serve(vol, mnt, &args, pfd[1], true);
		fuse_opt_free_args(&args);
		_exit(rc);
	}
	close(pfd[1]);
	fuse_opt_free_args(&args);
	char msg[1200];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof msg - 1 && (r = read(pfd[0], msg + got, sizeof msg - 1 - got)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)r;
	}
	close(pfd[0]);
	msg[got] = '\0';
	if (got) {
		die_msg("%s", msg);
		return 1;
	}
	/* an empty report with a live child means the mount is up */
	int status;
	if (waitpid(pid, &status, WNOHANG) == pid) {
		char dir[PATH_MAX];
		if (mfs_local_dir(vol, dir, sizeof dir) != 0)
			snprintf(dir, sizeof dir, "%s", vol);
		die_msg("the metafs daemon exited before the mount was ready; see %s/metafs.log", dir);
		return 1;
	}
	return 0;
}
