/*
 * The native addon's thread pool (pthreads). It knows nothing about ops (ggml style):
 * pool_run(pool, task, ctx, n) calls task(ctx, slice, n, thread) for slice = 0 .. n-1, the
 * calling thread and the workers claiming slices in turn, and returns when all are done.
 * Workers spin briefly after each task (a forward issues the next op within microseconds),
 * then sleep on a condition variable.
 */
#ifndef RESNET_THREADPOOL_H
#define RESNET_THREADPOOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* task(ctx, slice, slices, thread): thread is the index of the thread running it (0: the
   caller), for per-thread scratch. */
typedef void (*pool_task)(void *ctx, int32_t tid, int32_t nthreads, int32_t thread);

typedef struct worker worker;

typedef struct {
  pthread_mutex_t mutex;
  pthread_cond_t wake; /* workers: a new generation, or stop */
  pthread_cond_t done; /* caller: pending reached 0 */
  worker *workers;
  int32_t nworkers; /* running workers: threads - 1 */
  int32_t threads;  /* what setThreads asked for */
  pool_task task;
  void *ctx;
  int32_t slices;       /* task(ctx, slice, slices) for slice < slices, claimed in turn */
  int32_t participants; /* threads claiming slices this run, the caller included */
  atomic_int next;      /* the next unclaimed slice */
  atomic_uint generation; /* bumped once per run */
  atomic_int pending;     /* workers with a tid still running */
  atomic_int sleepers;    /* workers waiting on `wake` */
  atomic_bool stop;
} thread_pool;

struct worker {
  thread_pool *pool;
  pthread_t thread;
  int32_t tid;
  unsigned seen; /* the generation before the worker's first run, set before it starts */
};

void pool_init(thread_pool *pool, int32_t threads);
void pool_stop_workers(thread_pool *pool);
bool pool_start_workers(thread_pool *pool);
void pool_destroy(thread_pool *pool);
void pool_run(thread_pool *pool, pool_task task, void *ctx, int32_t slices);
int32_t cpu_count(void);

#endif /* RESNET_THREADPOOL_H */
