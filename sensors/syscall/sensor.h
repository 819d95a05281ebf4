/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The record the falconet syscall sensor sends through its ring buffer, shared by the BPF
 * program (sensor.bpf.c) and documented for the Python decoder (records.py mirrors it; a
 * test checks both against the BTF of the compiled object).
 *
 * Every record has the same size (FN_REC_SIZE) so user space can view a span of the ring
 * as one numpy array. The 64-byte header is common; the body depends on `kind`:
 *   kind < FN_NR_MAX   a syscall exit: a[] are the raw arguments, x[] derived values,
 *                      data[] the strings / socket addresses of that syscall
 *   FN_K_CHUNK         a piece of a long value of the next FN_K_EXEC of the same thread
 *                      (argv, env, paths); emitted *before* that record
 *   FN_K_EXEC/FORK/EXIT process lifecycle (sched_process_* tracepoints)
 */
#ifndef FALCONET_SENSOR_H
#define FALCONET_SENSOR_H

#define FN_REC_SIZE 512
#define FN_BODY_SIZE 448 /* FN_REC_SIZE - header */
#define FN_DATA_SIZE 352 /* body - a[6] - x[6] */
#define FN_NR_MAX 512    /* syscall numbers the filter bitmap covers */

/* record kinds above the syscall numbers */
#define FN_K_CHUNK 1000
#define FN_K_EXEC 1001
#define FN_K_FORK 1002
#define FN_K_EXIT 1003

/* FN_K_CHUNK: what the chunk holds (aux = what << 16 | seq << 8 ... see below) */
#define FN_C_FILENAME 1 /* bprm->filename, kernel string */
#define FN_C_EXEPATH 2  /* path components of the executable, leaf first, NUL-separated */
#define FN_C_CWD 3      /* path components of the working directory, leaf first */
#define FN_C_ARGV 4     /* argv bytes (NUL-separated), in order of seq */
#define FN_C_ENV 5      /* environment bytes (NUL-separated), in order of seq */
#define FN_C_CGROUP 6   /* cgroup names: v2 leaf, v2 parent, v1 leaf, v1 parent */

#define FN_ARGV_CHUNKS 8
#define FN_ENV_CHUNKS 4

/* record flags */
#define FN_F_TRUNC 0x0001     /* a string or buffer was cut to fit */
#define FN_F_PATHWALK 0x0002  /* data[] holds path components leaf first (chdir/fchdir) */
#define FN_F_SOCK 0x0004      /* body holds a struct fn_sock at data[0] */
#define FN_F_UADDR 0x0008     /* body holds a struct fn_uaddr at data[FN_UADDR_OFF] */
#define FN_F_FILE 0x0010      /* x[0..2] describe the file of the fd (dev, ino, mode) */
#define FN_F_GROUP_DEAD 0x0020 /* FN_K_EXIT: the last thread of the process exited */

/* executable flags (FN_K_EXEC x[5] low byte), libs' PPM_EXE_* values */
#define FN_EXE_WRITABLE 1
#define FN_EXE_UPPER_LAYER 2
#define FN_EXE_FROM_MEMFD 4
#define FN_EXE_LOWER_LAYER 8

/* file info flags (x[2] bits above the 16-bit i_mode) */
#define FN_FILE_CREATED (1 << 16)     /* FMODE_CREATED: this open created the file */
#define FN_FILE_UPPER_LAYER (1 << 17) /* the file is on the upper layer of an overlay */
#define FN_FILE_LOWER_LAYER (1 << 18)

#define FN_UADDR_OFF 48 /* offset in data[] of the user sockaddr */
#define FN_PATH2_OFF 176 /* offset in data[] of the second path of two-path syscalls */

/* x86_64 thread_info status bit of 32-bit (compat) syscalls */
#define FN_TS_COMPAT 0x0002

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct fn_sock {        /* 48 bytes: the socket of an fd, read from the kernel */
	__u16 family;   /* AF_INET, AF_INET6, AF_UNIX ... */
	__u16 type;     /* SOCK_STREAM, SOCK_DGRAM ... */
	__u16 proto;    /* IPPROTO_TCP ... */
	__u16 state;    /* sk_state (TCP_ESTABLISHED = 1) */
	__u16 lport;    /* host order */
	__u16 rport;    /* host order */
	__u32 pad;
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
};

struct fn_uaddr {        /* 128 bytes: a sockaddr the process passed (connect, sendto) */
	__u16 family;
	__u16 port;      /* host order */
	__u32 len;       /* addrlen passed */
	__u8 addr[16];
	char path[104];  /* sun_path (cut) */
};

struct fn_rec {
	__u64 ts;        /* boot-time ns */
	__u32 tgid;
	__u32 tid;
	__u16 kind;      /* syscall number or FN_K_* */
	__u16 flags;     /* FN_F_* */
	__u32 uid;
	__u32 gid;
	__u32 aux;       /* kind-specific: string length, chunk what/seq/len */
	__s64 ret;       /* syscall return value, exit code */
	__u64 cap_eff;   /* effective capabilities of the thread */
	char comm[16];
	__u64 a[6];      /* raw syscall arguments / lifecycle values */
	__u64 x[6];      /* derived values */
	__u8 data[FN_DATA_SIZE];
};

struct fn_settings {
	__u64 want[FN_NR_MAX / 64]; /* syscall numbers to report */
	__u32 self_tgid;            /* never report this process (the sensor) */
	__u32 only_tgid;            /* if set, report only this process (benchmarks) */
	__u32 wakeup;               /* 0: libbpf default, 1: never wake, >= 2: byte threshold */
	__u32 want_env;             /* send the environment of exec'd processes */
};

/* per-CPU counters (map fn_counters, one struct per CPU) */
struct fn_counters {
	__u64 submitted;
	__u64 dropped;   /* bpf_ringbuf_reserve failures: records lost */
	__u64 truncated; /* records whose strings were cut */
	__u64 pad;
};

#endif
