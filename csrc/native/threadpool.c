/* The native addon's thread pool: see threadpool.h. */
#define _GNU_SOURCE
#include "threadpool.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a worker spins for the next run, and the caller for the workers, before sleeping. */
#define SPIN_NS 200000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs slices of the current run until none is left. */
static void run_slices(thread_pool *pool, int32_t thread) {
  for (int32_t slice; (slice = atomic_fetch_add(&pool->next, 1)) < pool->slices;)
    pool->task(pool->ctx, slice, pool->slices, thread);
}

static void *worker_main(void *arg) {
  worker *self = arg;
  thread_pool *pool = self->pool;
  unsigned seen = self->seen;
  for (;;) {
    unsigned generation = atomic_load(&pool->generation);
    if (generation == seen && !atomic_load(&pool->stop)) {
      const int64_t deadline = now_ns() + SPIN_NS;
      for (int spins = 0; (generation = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop); spins++) {
        cpu_relax();
        if ((spins & 63) == 63 && now_ns() > deadline) break;
      }
    }
    if (generation == seen && !atomic_load(&pool->stop)) {
      /* sleepers++ before re-reading generation, and the caller bumps generation before
         reading sleepers (both seq_cst): one of the two sees the other. */
      pthread_mutex_lock(&pool->mutex);
      atomic_fetch_add(&pool->sleepers, 1);
      while ((generation = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
        pthread_cond_wait(&pool->wake, &pool->mutex);
      atomic_fetch_sub(&pool->sleepers, 1);
      pthread_mutex_unlock(&pool->mutex);
    }
    if (atomic_load(&pool->stop)) return NULL;
    seen = generation;
    if (self->tid < pool->participants) {
      run_slices(pool, self->tid);
      if (atomic_fetch_sub(&pool->pending, 1) == 1) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->mutex);
      }
    }
  }
}

void pool_init(thread_pool *pool, int32_t threads) {
  memset(pool, 0, sizeof *pool);
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->wake, NULL);
  pthread_cond_init(&pool->done, NULL);
  pool->threads = threads;
}

void pool_stop_workers(thread_pool *pool) {
  if (pool->nworkers == 0) return;
  pthread_mutex_lock(&pool->mutex);
  atomic_store(&pool->stop, true);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  for (int32_t i = 0; i < pool->nworkers; i++) pthread_join(pool->workers[i].thread, NULL);
  free(pool->workers);
  pool->workers = NULL;
  pool->nworkers = 0;
  atomic_store(&pool->stop, false);
}

/* Starts threads - 1 workers if they are not running; false if none could be started. */
bool pool_start_workers(thread_pool *pool) {
  const int32_t wanted = pool->threads - 1;
  if (pool->nworkers == wanted) return true;
  pool_stop_workers(pool);
  pool->workers = calloc((size_t)wanted, sizeof(worker));
  if (!pool->workers) return false;
  for (int32_t i = 0; i < wanted; i++) {
    worker *w = &pool->workers[i];
    w->pool = pool;
    w->tid = i + 1;
    w->seen = atomic_load(&pool->generation);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) break;
    pool->nworkers = i + 1;
  }
  return pool->nworkers > 0;
}

void pool_destroy(thread_pool *pool) {
  pool_stop_workers(pool);
  pthread_mutex_destroy(&pool->mutex);
  pthread_cond_destroy(&pool->wake);
  pthread_cond_destroy(&pool->done);
}

/* task(ctx, slice, slices) for every slice < slices; returns when all are done. Up to the
   pool's threads (the caller included) claim slices in turn, so that a thread that runs
   slower (its core shared with other work) takes fewer of them. */
void pool_run(thread_pool *pool, pool_task task, void *ctx, int32_t slices) {
  int32_t n = slices < pool->threads ? slices : pool->threads;
  if (n > 1 && !pool_start_workers(pool)) n = 1;
  if (n > pool->nworkers + 1) n = pool->nworkers + 1;
  if (n <= 1) {
    for (int32_t slice = 0; slice < slices; slice++) task(ctx, slice, slices, 0);
    return;
  }
  pool->task = task;
  pool->ctx = ctx;
  pool->slices = slices;
  pool->participants = n;
  atomic_store(&pool->next, 0);
  atomic_store(&pool->pending, n - 1);
  atomic_fetch_add(&pool->generation, 1);
  if (atomic_load(&pool->sleepers) > 0) {
    pthread_mutex_lock(&pool->mutex);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
  }
  run_slices(pool, 0);
  const int64_t deadline = now_ns() + SPIN_NS;
  for (int spins = 0; atomic_load(&pool->pending) > 0; spins++) {
    cpu_relax();
    if ((spins & 63) == 63 && now_ns() > deadline) break;
  }
  if (atomic_load(&pool->pending) > 0) {
    pthread_mutex_lock(&pool->mutex);
    while (atomic_load(&pool->pending) > 0) pthread_cond_wait(&pool->done, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
  }
}

int32_t cpu_count(void) {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int32_t)n : 1;
}
