// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
/*
 * falconet syscall sensor: the kernel side.
 *
 * CO-RE program built with `clang -target bpf` against a vmlinux.h that bpftool generates
 * from /sys/kernel/btf/vmlinux (scripts/build_bpf.sh). Hooks are BTF-enabled raw
 * tracepoints only (no kprobes, no fentry): one `sys_exit` program sees every syscall
 * return and keeps only the syscall numbers user space asked for (fn_cfg.want, set from
 * the event types the loaded rules need), plus sched_process_exec/fork/exit for the
 * process table. Records are fixed-size (sensor.h) and go through one BPF ring buffer;
 * a failed reservation is counted in fn_stats.dropped.
 *
 * The program sends only what user space cannot know: arguments, paths, socket addresses,
 * the file behind an fd. Process context (name, args, parents, user, container) comes
 * from the user-space process table, kept by the lifecycle records.
 *
 * Two objects are built from this file (scripts/build_bpf.sh): sensor.bpf.o reads the
 * struct file / inode / socket behind an fd with plain loads through the bpf_rdonly_cast
 * kfunc (kernel >= 6.2), a helper call fewer per field; sensor-compat.bpf.o (FN_COMPAT)
 * reads them with bpf_probe_read_kernel for older kernels. The loader picks by the
 * kernel's BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sensor.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* x86_64 syscall numbers this program decodes */
#define NR_open 2
#define NR_dup 32
#define NR_dup2 33
#define NR_socket 41
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_listen 50
#define NR_execve 59
#define NR_chdir 80
#define NR_fchdir 81
#define NR_rename 82
#define NR_mkdir 83
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_chmod 90
#define NR_fchmod 91
#define NR_init_module 175
#define NR_openat 257
#define NR_mkdirat 258
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_fchmodat 268
#define NR_accept4 288
#define NR_dup3 292
#define NR_setns 308
#define NR_finit_module 313
#define NR_renameat2 316
#define NR_execveat 322
#define NR_clone3 435
#define NR_openat2 437

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define FMODE_CREATED 0x100000
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define AT_FDCWD -100
#define RLIMIT_NOFILE 7

#define WALK_DEPTH 24
#define NAME_PIECE 192 /* longest path component copied */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); /* resized by the loader before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fn_settings);
} fn_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fn_counters);
} fn_stats SEC(".maps");

/* older layouts, for CO-RE */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

struct inode___old {
	struct timespec64 i_ctime;
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

struct inode___v66 {
	struct timespec64 __i_ctime;
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

static const __u32 zero = 0;

/* keeps the record types in the object's BTF, where the loader checks its own layout */
struct fn_layout {
	struct fn_rec rec;
	struct fn_sock sock;
	struct fn_uaddr uaddr;
};
struct fn_layout *fn_layout_btf __attribute__((unused));

/* -- ring buffer ---------------------------------------------------------------------- */

static __always_inline struct fn_rec *rec_reserve(void)
{
	struct fn_rec *r = bpf_ringbuf_reserve(&events, sizeof(struct fn_rec), 0);
	if (!r) {
		struct fn_counters *c = bpf_map_lookup_elem(&fn_stats, &zero);
		if (c)
			c->dropped++;
	}
	return r;
}

static __always_inline void rec_submit(struct fn_rec *r, const struct fn_settings *cfg)
{
	__u64 flags = 0;
	__u32 wakeup = cfg->wakeup;
	if (wakeup == 1)
		flags = BPF_RB_NO_WAKEUP;
	else if (wakeup >= 2)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup ? BPF_RB_FORCE_WAKEUP
										  : BPF_RB_NO_WAKEUP;
	if (r->flags & FN_F_TRUNC) {
		struct fn_counters *c = bpf_map_lookup_elem(&fn_stats, &zero);
		if (c)
			c->truncated++;
	}
	bpf_ringbuf_submit(r, flags);
}

static __always_inline __u64 cap_of(const kernel_cap_t *cap)
{
	__u64 v = 0; /* u64 since 6.3, u32[2] before: the same 8 bytes */
	bpf_probe_read_kernel(&v, sizeof(v), cap);
	return v;
}

/* kernel_cap_t before 6.3 */
struct kernel_cap_struct___old {
	__u32 cap[2];
} __attribute__((preserve_access_index));

/* the header of a record for the current task, with direct (BTF) loads: no helper call
 * for the credentials and the comm */
static __always_inline void rec_head(struct fn_rec *r, __u16 kind, __u64 pid_tgid, long ret,
				     struct task_struct *task)
{
	const struct cred *cred = task->cred;
	r->ts = bpf_ktime_get_boot_ns();
	r->tgid = pid_tgid >> 32;
	r->tid = (__u32)pid_tgid;
	r->kind = kind;
	r->flags = 0;
	r->uid = cred->euid.val;
	r->gid = cred->egid.val;
	r->aux = 0;
	r->ret = ret;
	if (bpf_core_field_exists(cred->cap_effective.val))
		r->cap_eff = cred->cap_effective.val;
	else
		r->cap_eff = cap_of(&cred->cap_effective);
	__u64 *comm = (__u64 *)r->comm;
	comm[0] = *(__u64 *)&task->comm[0];
	comm[1] = *(__u64 *)&task->comm[8];
}

/* -- kernel objects ------------------------------------------------------------------- */

/*
 * KOBJ(type, ptr): a pointer that was read as a plain value (from an fd table, a void *
 * member) made loadable. With bpf_rdonly_cast the verifier treats it as an untrusted BTF
 * pointer: each field is one load the JIT guards against faults (a bad pointer reads 0),
 * instead of a bpf_probe_read_kernel call. KGET reads one field (one hop) either way.
 */
#ifndef FN_COMPAT
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define KOBJ(type, ptr) ((type *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))
#define KGET(ptr, field) ((ptr)->field)
#else
#define KOBJ(type, ptr) ((type *)(ptr))
#define KGET(ptr, field) BPF_CORE_READ(ptr, field)
#endif

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct file *f = NULL;
	if (fd < 0)
		return NULL;
	struct files_struct *files = task->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	struct file **arr = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

/* dev, ino and mode of a file into x[0..2]; FN_F_SOCK body when it is a socket */
static __always_inline void fill_file(struct fn_rec *r, struct file *fptr, int want_sock)
{
	if (!fptr)
		return;
	struct file *f = KOBJ(struct file, fptr);
	struct inode *ino = KGET(f, f_inode);
	if (!ino)
		return;
	__u32 mode = KGET(ino, i_mode);
	__u32 fmode = KGET(f, f_mode);
	struct super_block *sb = KGET(ino, i_sb);
	r->x[0] = KGET(sb, s_dev);
	r->x[1] = KGET(ino, i_ino);
	__u32 info = mode & 0xffff;
	if (fmode & FMODE_CREATED)
		info |= FN_FILE_CREATED;
	r->x[2] = info;
	r->flags |= FN_F_FILE;
	if (!want_sock || (mode & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = KOBJ(struct socket, KGET(f, private_data));
	struct sock *sk = KGET(sock, sk);
	if (!sk)
		return;
	struct fn_sock *s = (struct fn_sock *)r->data;
	__u16 family = KGET(sk, __sk_common.skc_family);
	s->family = family;
	s->type = KGET(sk, sk_type);
	s->proto = KGET(sk, sk_protocol);
	s->state = KGET(sk, __sk_common.skc_state);
	s->lport = KGET(sk, __sk_common.skc_num);
	s->rport = bpf_ntohs(KGET(sk, __sk_common.skc_dport));
	s->pad = 0;
	if (family == AF_INET) {
		__u32 l = KGET(sk, __sk_common.skc_rcv_saddr);
		__u32 d = KGET(sk, __sk_common.skc_daddr);
		__builtin_memcpy(s->laddr, &l, 4);
		__builtin_memcpy(s->raddr, &d, 4);
	} else if (family == AF_INET6) {
#ifndef FN_COMPAT
		__builtin_memcpy(s->laddr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(s->raddr, &sk->__sk_common.skc_v6_daddr, 16);
#else
		BPF_CORE_READ_INTO(&s->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&s->raddr, sk, __sk_common.skc_v6_daddr);
#endif
	}
	r->flags |= FN_F_SOCK;
}

/* a struct sockaddr the process passed (user memory) into the fn_uaddr slot */
static __always_inline void fill_uaddr(struct fn_rec *r, __u64 uptr, __u64 ulen)
{
	if (!uptr || ulen < 2)
		return;
	struct fn_uaddr *u = (struct fn_uaddr *)(r->data + FN_UADDR_OFF);
	__u16 family = 0;
	if (bpf_probe_read_user(&family, sizeof(family), (void *)uptr))
		return;
	u->family = family;
	u->len = ulen;
	u->port = 0;
	if (family == AF_INET) {
		struct sockaddr_in in = {};
		bpf_probe_read_user(&in, sizeof(in), (void *)uptr);
		u->port = bpf_ntohs(in.sin_port);
		__builtin_memcpy(u->addr, &in.sin_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 in6 = {};
		bpf_probe_read_user(&in6, sizeof(in6), (void *)uptr);
		u->port = bpf_ntohs(in6.sin6_port);
		__builtin_memcpy(u->addr, &in6.sin6_addr, 16);
	} else if (family == AF_UNIX) {
		/* sun_path starts after the 2-byte family; abstract names start with NUL */
		bpf_probe_read_user(u->path, sizeof(u->path) - 1, (void *)(uptr + 2));
		u->path[sizeof(u->path) - 1] = 0;
	}
	r->flags |= FN_F_UADDR;
}

/*
 * Path of (dentry, vfsmount) up to the task's root: its components, leaf first, each
 * NUL-terminated, written at buf[0..]; stops before `limit` (buf must hold limit +
 * NAME_PIECE bytes). Pointers are read with probe reads (they are plain scalars here).
 */
static __always_inline __u32 walk_path(struct dentry *d, struct vfsmount *vm,
				       const struct path *root, __u8 *buf, __u32 limit,
				       __u16 *flags)
{
	struct dentry *root_d = BPF_CORE_READ(root, dentry);
	struct vfsmount *root_m = BPF_CORE_READ(root, mnt);
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	__u32 off = 0;

	for (int i = 0; i < WALK_DEPTH; i++) {
		if (d == root_d && vm == root_m)
			return off;
		struct dentry *mroot = BPF_CORE_READ(vm, mnt_root);
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (d == mroot) {
			struct mount *m = (struct mount *)((__u64)vm - mnt_off);
			struct mount *mp = BPF_CORE_READ(m, mnt_parent);
			if (mp == m || !mp) /* the root of the mount tree */
				return off;
			d = BPF_CORE_READ(m, mnt_mountpoint);
			vm = (struct vfsmount *)((__u64)mp + mnt_off);
			continue;
		}
		if (off > limit) {
			*flags |= FN_F_TRUNC;
			return off;
		}
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		long n = bpf_probe_read_kernel_str(buf + off, NAME_PIECE, name);
		if (n <= 0 || d == parent) /* d == parent: a pseudo file (memfd, pipe): its name only */
			return n > 0 ? off + n : off;
		off += n;
		d = parent;
	}
	*flags |= FN_F_TRUNC;
	return off;
}

/* -- syscall exits -------------------------------------------------------------------- */

static __always_inline __u64 arg_of(struct pt_regs *regs, int i)
{
	switch (i) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	case 3:
		return regs->r10;
	case 4:
		return regs->r8;
	default:
		return regs->r9;
	}
}

static __always_inline void read_path(struct fn_rec *r, __u64 uptr, __u32 off, __u32 size)
{
	/* off/size are constants at each call site */
	long n = bpf_probe_read_user_str(r->data + off, size, (void *)uptr);
	if (n < 0)
		r->data[off] = 0;
	else if (n == size)
		r->flags |= FN_F_TRUNC;
	if (off == 0)
		r->aux = n < 0 ? 0 : n;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(fn_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	if ((unsigned long)nr >= FN_NR_MAX)
		return 0;
	struct fn_settings *cfg = bpf_map_lookup_elem(&fn_cfg, &zero);
	if (!cfg)
		return 0;
	if (!(cfg->want[nr >> 6] & (1ULL << (nr & 63))))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg->self_tgid || (cfg->only_tgid && tgid != cfg->only_tgid))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->thread_info.status & FN_TS_COMPAT)
		return 0; /* 32-bit syscall numbers differ */
	if ((nr == NR_execve || nr == NR_execveat) && ret == 0)
		return 0; /* a successful exec is reported by sched_process_exec */

	struct fn_rec *r = rec_reserve();
	if (!r)
		return 0;
	rec_head(r, nr, pid_tgid, ret, task);
	__u64 a0 = regs->di, a1 = regs->si, a2 = regs->dx, a3 = regs->r10;
	r->a[0] = a0;
	r->a[1] = a1;
	r->a[2] = a2;
	r->a[3] = a3;
	r->a[4] = regs->r8;
	r->a[5] = regs->r9;
	r->x[0] = 0; /* the ring is not zeroed: no stale file info when no file was found */
	r->x[1] = 0;
	r->x[2] = 0;

	switch (nr) {
	case NR_open:
	case NR_creat:
		read_path(r, a0, 0, FN_DATA_SIZE);
		if (ret >= 0)
			fill_file(r, fd_file(task, ret), 0);
		break;
	case NR_openat:
	case NR_openat2:
		read_path(r, a1, 0, FN_DATA_SIZE);
		if (nr == NR_openat2) {
			struct open_how how = {};
			bpf_probe_read_user(&how, sizeof(how), (void *)a2);
			r->x[3] = how.flags;
			r->x[4] = how.mode;
			r->x[5] = how.resolve;
		}
		if (ret >= 0)
			fill_file(r, fd_file(task, ret), 0);
		break;
	case NR_unlink:
	case NR_rmdir:
	case NR_mkdir:
	case NR_chmod:
	case NR_execve:
		read_path(r, a0, 0, FN_DATA_SIZE);
		break;
	case NR_unlinkat:
	case NR_mkdirat:
	case NR_fchmodat:
	case NR_execveat:
		read_path(r, a1, 0, FN_DATA_SIZE);
		break;
	case NR_rename:
	case NR_link:
	case NR_symlink:
		read_path(r, a0, 0, FN_PATH2_OFF);
		read_path(r, a1, FN_PATH2_OFF, FN_DATA_SIZE - FN_PATH2_OFF);
		break;
	case NR_renameat:
	case NR_renameat2:
	case NR_linkat:
		read_path(r, a1, 0, FN_PATH2_OFF);
		read_path(r, a3, FN_PATH2_OFF, FN_DATA_SIZE - FN_PATH2_OFF);
		break;
	case NR_symlinkat:
		read_path(r, a0, 0, FN_PATH2_OFF);
		read_path(r, a2, FN_PATH2_OFF, FN_DATA_SIZE - FN_PATH2_OFF);
		break;
	case NR_chdir:
	case NR_fchdir:
		if (ret == 0) {
			struct fs_struct *fs = task->fs;
			__u16 flags = 0;
			struct dentry *d = BPF_CORE_READ(fs, pwd.dentry);
			struct vfsmount *vm = BPF_CORE_READ(fs, pwd.mnt);
			r->aux = walk_path(d, vm, &fs->root, r->data,
					   FN_DATA_SIZE - NAME_PIECE, &flags);
			r->flags |= flags | FN_F_PATHWALK;
		} else if (nr == NR_chdir) {
			read_path(r, a0, 0, FN_DATA_SIZE);
		}
		break;
	case NR_init_module:
		read_path(r, a2, 0, FN_DATA_SIZE);
		break;
	case NR_finit_module:
		fill_file(r, fd_file(task, a0), 0);
		read_path(r, a1, FN_UADDR_OFF, FN_DATA_SIZE - FN_UADDR_OFF);
		break;
	case NR_fchmod:
	case NR_setns:
	case NR_listen:
	case NR_dup:
	case NR_dup2:
	case NR_dup3:
		fill_file(r, fd_file(task, a0), 1);
		break;
	case NR_connect:
		fill_file(r, fd_file(task, a0), 1);
		fill_uaddr(r, a1, a2);
		break;
	case NR_sendto:
	case NR_recvfrom: {
		fill_file(r, fd_file(task, a0), 1);
		__u64 alen = regs->r9;
		if (nr == NR_recvfrom && regs->r9) { /* socklen_t *addrlen, filled by the call */
			__u32 l = 0;
			bpf_probe_read_user(&l, sizeof(l), (void *)regs->r9);
			alen = l;
		}
		if (nr == NR_sendto || ret >= 0)
			fill_uaddr(r, regs->r8, alen);
		break;
	}
	case NR_sendmsg:
	case NR_recvmsg: {
		fill_file(r, fd_file(task, a0), 1);
		struct user_msghdr mh = {};
		if (!bpf_probe_read_user(&mh, sizeof(mh), (void *)a1) && (nr == NR_sendmsg || ret >= 0))
			fill_uaddr(r, (__u64)mh.msg_name, mh.msg_namelen);
		break;
	}
	case NR_accept:
	case NR_accept4:
		if (ret >= 0)
			fill_file(r, fd_file(task, ret), 1);
		break;
	default: /* socket, ptrace, setuid, setgid, unshare, bpf, userfaultfd, clone...: a[] */
		break;
	}
	rec_submit(r, cfg);
	return 0;
}

/* -- process lifecycle ---------------------------------------------------------------- */

static __always_inline struct fn_rec *chunk_begin(__u64 ts, __u64 pid_tgid, __u32 what, __u32 seq)
{
	struct fn_rec *r = rec_reserve();
	if (!r)
		return NULL;
	r->ts = ts;
	r->tgid = pid_tgid >> 32;
	r->tid = (__u32)pid_tgid;
	r->kind = FN_K_CHUNK;
	r->flags = 0;
	r->uid = 0;
	r->gid = 0;
	r->aux = (what << 24) | (seq << 16);
	r->ret = 0;
	r->cap_eff = 0;
	return r;
}

#define BODY(r) ((__u8 *)&(r)->a[0])

static __always_inline void emit_walk(const struct fn_settings *cfg, __u64 ts, __u64 pid_tgid,
				      __u32 what, struct dentry *d, struct vfsmount *vm,
				      const struct path *root)
{
	struct fn_rec *r = chunk_begin(ts, pid_tgid, what, 0);
	if (!r)
		return;
	__u16 flags = 0;
	__u32 n = walk_path(d, vm, root, BODY(r), FN_BODY_SIZE - NAME_PIECE - 1, &flags);
	r->aux |= n & 0xffff;
	r->flags = flags;
	rec_submit(r, cfg);
}

/* user memory [start, end) in chunks of FN_BODY_SIZE; returns 1 when cut */
static __always_inline int emit_user_span(const struct fn_settings *cfg, __u64 ts, __u64 pid_tgid,
					  __u32 what, __u64 start, __u64 end, __u32 max_chunks)
{
	for (__u32 seq = 0; seq < FN_ARGV_CHUNKS; seq++) {
		if (seq >= max_chunks || start >= end)
			break;
		__u64 len = end - start;
		if (len > FN_BODY_SIZE)
			len = FN_BODY_SIZE;
		struct fn_rec *r = chunk_begin(ts, pid_tgid, what, seq);
		if (!r)
			return 1;
		if (bpf_probe_read_user(BODY(r), len & 0x1ff, (void *)start))
			len = 0;
		r->aux |= len & 0xffff;
		rec_submit(r, cfg);
		start += len;
		if (!len)
			break;
	}
	return start < end;
}

static __always_inline void put_name(__u8 *buf, __u32 *off, const char *name)
{
	__u32 o = *off;
	if (o > FN_BODY_SIZE - 128)
		return;
	long n = bpf_probe_read_kernel_str(buf + o, 112, name);
	if (n <= 0) {
		buf[o] = 0;
		n = 1;
	}
	*off = o + n;
}

static __always_inline const char *kn_name(struct kernfs_node *kn)
{
	return kn ? BPF_CORE_READ(kn, name) : NULL;
}

static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (!kn)
		return NULL;
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	struct kernfs_node___old *old = (void *)kn;
	return BPF_CORE_READ(old, parent);
}

static __always_inline void emit_cgroups(const struct fn_settings *cfg, __u64 ts, __u64 pid_tgid,
					 struct task_struct *p)
{
	struct fn_rec *r = chunk_begin(ts, pid_tgid, FN_C_CGROUP, 0);
	if (!r)
		return;
	__u8 *buf = BODY(r);
	__u32 off = 0;
	struct css_set *cgs = BPF_CORE_READ(p, cgroups);
	struct kernfs_node *kn = BPF_CORE_READ(cgs, dfl_cgrp, kn);
	put_name(buf, &off, kn_name(kn));
	put_name(buf, &off, kn_name(kn_parent(kn)));
	kn = NULL;
	if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct cgroup_subsys_state *css = NULL;
		if (id >= 0 && id < 16)
			bpf_probe_read_kernel(&css, sizeof(css), &cgs->subsys[id]);
		if (css)
			kn = BPF_CORE_READ(css, cgroup, kn);
	}
	put_name(buf, &off, kn_name(kn));
	put_name(buf, &off, kn_name(kn_parent(kn)));
	r->aux |= off & 0xffff;
	rec_submit(r, cfg);
}

/* numbers[level].nr of a struct pid, and its namespace's init start time */
static __always_inline __u32 pid_vnr(struct pid *pid, __u64 *ns_start)
{
	if (!pid)
		return 0;
	__u32 level = BPF_CORE_READ(pid, level);
	struct upid up = {};
	__u64 base = (__u64)pid + bpf_core_field_offset(struct pid, numbers);
	bpf_probe_read_kernel(&up, sizeof(up), (void *)(base + (level & 31) * sizeof(struct upid)));
	if (ns_start) {
		struct task_struct *reaper = BPF_CORE_READ(up.ns, child_reaper);
		*ns_start = reaper ? BPF_CORE_READ(reaper, start_boottime) : 0;
	}
	return up.nr;
}

static __always_inline __u64 inode_time(struct inode *ino, int mtime)
{
	if (bpf_core_field_exists(ino->i_mtime_sec)) {
		if (mtime)
			return BPF_CORE_READ(ino, i_mtime_sec) * 1000000000ULL +
			       BPF_CORE_READ(ino, i_mtime_nsec);
		return BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ULL +
		       BPF_CORE_READ(ino, i_ctime_nsec);
	}
	struct timespec64 t = {};
	struct inode___v66 *v66 = (void *)ino;
	struct inode___old *old = (void *)ino;
	if (bpf_core_field_exists(v66->__i_mtime))
		t = mtime ? BPF_CORE_READ(v66, __i_mtime) : BPF_CORE_READ(v66, __i_ctime);
	else
		t = mtime ? BPF_CORE_READ(old, i_mtime) : BPF_CORE_READ(old, i_ctime);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static __always_inline __u32 tty_of(struct task_struct *p)
{
	struct tty_struct *tty = BPF_CORE_READ(p, signal, tty);
	if (!tty)
		return 0;
	int index = BPF_CORE_READ(tty, index);
	int major = BPF_CORE_READ(tty, driver, major);
	int minor = BPF_CORE_READ(tty, driver, minor_start) + index;
	/* new_encode_dev */
	return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(fn_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct fn_settings *cfg = bpf_map_lookup_elem(&fn_cfg, &zero);
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg->self_tgid || (cfg->only_tgid && tgid != cfg->only_tgid))
		return 0;
	__u64 ts = bpf_ktime_get_boot_ns();
	__u16 trunc = 0;

	struct fn_rec *c = chunk_begin(ts, pid_tgid, FN_C_FILENAME, 0);
	if (c) {
		long n = bpf_probe_read_kernel_str(BODY(c), FN_BODY_SIZE, BPF_CORE_READ(bprm, filename));
		c->aux |= (n > 0 ? n : 0) & 0xffff;
		rec_submit(c, cfg);
	}
	struct file *exe = BPF_CORE_READ(bprm, file);
	struct fs_struct *fs = BPF_CORE_READ(p, fs);
	emit_walk(cfg, ts, pid_tgid, FN_C_EXEPATH, BPF_CORE_READ(exe, f_path.dentry),
		  BPF_CORE_READ(exe, f_path.mnt), &fs->root);
	emit_walk(cfg, ts, pid_tgid, FN_C_CWD, BPF_CORE_READ(fs, pwd.dentry),
		  BPF_CORE_READ(fs, pwd.mnt), &fs->root);
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	if (emit_user_span(cfg, ts, pid_tgid, FN_C_ARGV, BPF_CORE_READ(mm, arg_start),
			   BPF_CORE_READ(mm, arg_end), FN_ARGV_CHUNKS))
		trunc = FN_F_TRUNC;
	if (cfg->want_env &&
	    emit_user_span(cfg, ts, pid_tgid, FN_C_ENV, BPF_CORE_READ(mm, env_start),
			   BPF_CORE_READ(mm, env_end), FN_ENV_CHUNKS))
		trunc = FN_F_TRUNC;
	emit_cgroups(cfg, ts, pid_tgid, p);

	struct fn_rec *r = rec_reserve();
	if (!r)
		return 0;
	rec_head(r, FN_K_EXEC, pid_tgid, 0, p);
	r->ts = ts;
	r->flags |= trunc;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(p);
	r->a[0] = regs ? BPF_CORE_READ(regs, orig_ax) : 0;
	r->a[1] = BPF_CORE_READ(p, real_parent, tgid);
	struct signal_struct *sig = BPF_CORE_READ(p, signal);
	__u64 ns_start = 0;
	__u32 pgid = pid_vnr(BPF_CORE_READ(sig, pids[PIDTYPE_PGID]), NULL);
	r->a[2] = BPF_CORE_READ(sig, pids[PIDTYPE_PGID], numbers[0].nr) |
		  ((__u64)BPF_CORE_READ(sig, pids[PIDTYPE_SID], numbers[0].nr) << 32);
	__u32 vpid = pid_vnr(BPF_CORE_READ(p, thread_pid), &ns_start);
	r->a[3] = vpid | ((__u64)pgid << 32); /* vpid, vpgid */
	r->a[4] = BPF_CORE_READ(p, loginuid.val) | ((__u64)tty_of(p) << 32);
	r->a[5] = BPF_CORE_READ(p, group_leader, start_boottime);
	const struct cred *cred = BPF_CORE_READ(p, cred);
	r->x[0] = cap_of(&cred->cap_inheritable);
	r->x[1] = cap_of(&cred->cap_permitted);
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	r->x[2] = BPF_CORE_READ(ino, i_ino);
	r->x[3] = inode_time(ino, 0);
	r->x[4] = inode_time(ino, 1);

	__u32 exe_flags = 0;
	const unsigned char *leaf = BPF_CORE_READ(exe, f_path.dentry, d_name.name);
	char head[8] = {};
	bpf_probe_read_kernel(head, 6, leaf);
	if (head[0] == 'm' && head[1] == 'e' && head[2] == 'm' && head[3] == 'f' && head[4] == 'd' &&
	    head[5] == ':')
		exe_flags |= FN_EXE_FROM_MEMFD;
	struct dentry *dent = BPF_CORE_READ(exe, f_path.dentry);
	if (BPF_CORE_READ(dent, d_sb, s_magic) == OVERLAYFS_SUPER_MAGIC &&
	    bpf_core_type_exists(struct ovl_inode)) {
		struct inode *vi = BPF_CORE_READ(dent, d_inode);
		struct ovl_inode *oi =
			(struct ovl_inode *)((__u64)vi - bpf_core_field_offset(struct ovl_inode, vfs_inode));
		exe_flags |= BPF_CORE_READ(oi, __upperdentry) ? FN_EXE_UPPER_LAYER : FN_EXE_LOWER_LAYER;
	}
	r->x[5] = exe_flags;

	__u64 *e = (__u64 *)r->data;
	e[0] = ns_start;
	e[1] = BPF_CORE_READ(sig, rlim[RLIMIT_NOFILE].rlim_cur);
	e[2] = BPF_CORE_READ(ino, i_sb, s_dev);
	e[3] = old_pid;
	e[4] = BPF_CORE_READ(bprm, argc);
	rec_submit(r, cfg);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(fn_fork, struct task_struct *parent, struct task_struct *child)
{
	struct fn_settings *cfg = bpf_map_lookup_elem(&fn_cfg, &zero);
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg->self_tgid || (cfg->only_tgid && tgid != cfg->only_tgid))
		return 0;
	__u32 cpid = child->pid, ctgid = child->tgid;
	if (cpid != ctgid)
		return 0; /* a new thread: user space learns threads from their records */
	struct fn_rec *r = rec_reserve();
	if (!r)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	rec_head(r, FN_K_FORK, pid_tgid, ctgid, task);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 nr = regs ? BPF_CORE_READ(regs, orig_ax) : 0;
	__u64 clone_flags = regs ? BPF_CORE_READ(regs, di) : 0;
	if (nr == NR_clone3) {
		__u64 uflags = 0;
		bpf_probe_read_user(&uflags, sizeof(uflags), (void *)clone_flags);
		clone_flags = uflags;
	}
	r->a[0] = nr;
	r->a[1] = cpid;
	r->a[2] = BPF_CORE_READ(child, real_parent, tgid);
	__u64 ns_start = 0;
	r->a[3] = pid_vnr(BPF_CORE_READ(child, thread_pid), &ns_start);
	r->a[4] = BPF_CORE_READ(child, start_boottime);
	r->a[5] = clone_flags;
	r->x[0] = ns_start;
	r->x[1] = BPF_CORE_READ(child, loginuid.val);
	rec_submit(r, cfg);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(fn_exit, struct task_struct *p)
{
	/* only the first argument: it is (task) before 6.x and (task, group_dead) after */
	struct fn_settings *cfg = bpf_map_lookup_elem(&fn_cfg, &zero);
	if (!cfg)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == cfg->self_tgid || (cfg->only_tgid && tgid != cfg->only_tgid))
		return 0;
	struct fn_rec *r = rec_reserve();
	if (!r)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	rec_head(r, FN_K_EXIT, pid_tgid, BPF_CORE_READ(p, exit_code), task);
	if (BPF_CORE_READ(p, signal, live.counter) == 0)
		r->flags |= FN_F_GROUP_DEAD;
	r->a[0] = BPF_CORE_READ(p, real_parent, tgid);
	rec_submit(r, cfg);
	return 0;
}
