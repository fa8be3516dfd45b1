/*
 * Shared-memory blocks and descriptor passing: the operating system's side
 * of io/shm.c. shm_posix.c implements it on POSIX (memfd_create on Linux,
 * else shm_open; sendmsg/recvmsg with SCM_RIGHTS), the one file a port to
 * another OS replaces. Every function records a message prefixed by `what`
 * on failure (TB_ERR_IO with errno's text for system calls), and writes its
 * outputs only on success.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef TB_PLATFORM_SHM_H
#define TB_PLATFORM_SHM_H

#include "internal.h"

/* How a new block is made. */
typedef enum tb__shm_kind {
  TB__SHM_MEMFD = 0,    /* memfd_create, sealed against shrinking and growing */
  TB__SHM_SHM_OPEN = 1  /* shm_open under a random name, unlinked at once */
} tb__shm_kind;

/* The kind new blocks get: TB_SHM_KIND=shm_open forces the POSIX object;
 * otherwise the memfd where this build has memfd_create. */
TB_INTERNAL tb__shm_kind tb__shm_default_kind(void);

/* A new block of `size` zero bytes; *fd is close-on-exec and owned by the
 * caller. A memfd that the kernel refuses (ENOSYS: an old kernel, a
 * sandbox) falls back to shm_open. */
TB_INTERNAL tb_status tb__shm_block_create(const char *what, tb__shm_kind kind, uint64_t size,
                                           int *fd);

/* Maps `size` (> 0) bytes of fd from its start, MAP_SHARED, read-write or
 * read-only. */
TB_INTERNAL tb_status tb__shm_map(const char *what, int fd, uint64_t size, bool writable,
                                  void **base);
TB_INTERNAL void tb__shm_unmap(void *base, uint64_t size);

/* The bytes a descriptor holds: TB_ERR_IO when fstat fails, TB_ERR_INVALID
 * when it is not a regular file (memfds and shm_open objects are). */
TB_INTERNAL tb_status tb__shm_fd_size(const char *what, int fd, uint64_t *size);

/* A close-on-exec duplicate of fd. */
TB_INTERNAL tb_status tb__shm_fd_dup(const char *what, int fd, int *out);
TB_INTERNAL void tb__shm_fd_close(int fd);

/* Sends len bytes with one descriptor attached (SCM_RIGHTS), all of them:
 * one sendmsg, followed on a stream socket by sends of whatever it left. */
TB_INTERNAL tb_status tb__shm_send_fd(const char *what, int socket, const void *buf, size_t len,
                                      int fd);

/*
 * Receives one message sent by tb__shm_send_fd into buf (capacity bytes)
 * and the one descriptor attached to it (close-on-exec, the caller's).
 * Datagram and seqpacket sockets deliver it whole; on a stream socket the
 * first `head` bytes are read, then message_size(head bytes, &size) says
 * how long the whole message is (a status other than TB_OK stops there)
 * and the rest is read. TB_ERR_FORMAT when the message is longer than
 * capacity, when control data was cut, or when it carries no descriptor or
 * more than one; every descriptor received is closed on each failure.
 */
typedef tb_status (*tb__shm_size_fn)(const char *what, const void *head, size_t *size);
TB_INTERNAL tb_status tb__shm_recv_fd(const char *what, int socket, void *buf, size_t capacity,
                                      size_t head, tb__shm_size_fn message_size, size_t *len,
                                      int *fd);

#endif /* TB_PLATFORM_SHM_H */
