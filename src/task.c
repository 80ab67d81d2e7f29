/*  =========================================================================
    task.c - coroutines on the runtime thread, their scheduler and timers

    Every actor process has one runtime thread. Its tasks are coroutines on
    that thread, each on its own mmap'ed stack with a guard page at the low
    end. On x86-64 and aarch64 a switch is a few instructions of assembly
    that save the callee-saved registers on the stack and swap stack
    pointers (as libdill and boost.context do): glibc's swapcontext also
    saves and restores the signal mask, a system call on every switch, five
    per round trip. Elsewhere ucontext serves. A task runs until it parks;
    the loop calls
    tri_sched_run () to run, in FIFO order, every task made ready since
    (and those they make ready in turn), then polls until the earliest
    deadline of a parked task (a min-heap, ties broken by park order).
    Everything here belongs to the runtime thread and takes no lock; the
    worker threads of tr_to_thread live in pool.c.

    A finished task cannot unmap the stack it is running on: it marks
    itself done and switches to the loop, which gives the stack back, to a
    small cache of default-sized stacks (so that a task per incoming call
    costs no mmap) or to the kernel, and frees the task unless it is
    joinable.

    Sanitizers and valgrind are told about every stack. Under ASan each
    switch is wrapped in the fiber annotations (with ucontext it goes
    through getcontext + setcontext instead of swapcontext, whose
    interceptor only adds a warning that false positives may follow); a
    stack is unpoisoned when it is given back, since the frames of a
    finished task never return.
    Valgrind gets VALGRIND_STACK_REGISTER for each stack.
    =========================================================================
*/
#ifdef HAVE_CONFIG_H
#   include "config.h"
#endif
#include "troupe_private.h"

#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#if (defined (__x86_64__) || defined (__aarch64__)) && !defined (TRI_UCONTEXT)
#   define TRI_ASM_SWITCH 1
#else
#   include <ucontext.h>
#endif

#if defined (__has_feature)
#   if __has_feature (address_sanitizer)
#       define TRI_TASK_ASAN 1
#   endif
#endif
#if defined (__SANITIZE_ADDRESS__) || defined (TR_ASAN)
#   ifndef TRI_TASK_ASAN
#       define TRI_TASK_ASAN 1
#   endif
#endif
#ifdef TRI_TASK_ASAN
#   include <sanitizer/asan_interface.h>
#   include <sanitizer/common_interface_defs.h>
#endif

#ifdef HAVE_VALGRIND_VALGRIND_H
#   include <valgrind/valgrind.h>
#else
#   define VALGRIND_STACK_REGISTER(start, end) 0u
#   define VALGRIND_STACK_DEREGISTER(id) ((void) (id))
#endif

#define STACK_CACHE_MAX     64          //  default-sized stacks kept free
#define NOT_IN_HEAP         SIZE_MAX

typedef enum {
    TASK_READY,                 //  in the ready queue
    TASK_RUNNING,               //  s_current
    TASK_PARKED,                //  waiting for a wake, maybe in the heap
    TASK_DONE                   //  fn returned
} task_state_t;

//  A machine context: where a switched-out coroutine resumes.
#ifdef TRI_ASM_SWITCH
typedef struct {
    void *sp;                   //  callee-saved registers are on the stack
} machine_t;
#else
typedef ucontext_t machine_t;
#endif

struct tri_task {
    machine_t context;          //  registers while switched out
    tri_task_fn *fn;
    void *arg;
    void *data;                 //  tri_task_set_data
    task_state_t state;
    bool joinable;
    bool shielded;              //  the current park ignores cancellation
    atomic_bool cancelled;      //  sticky; read from any thread
    int wake_rc;                //  what the current park returns
    int64_t deadline;           //  of the current park, -1 none
    uint64_t park_seq;          //  orders equal deadlines by park time
    size_t heap_index;          //  in s_heap, or NOT_IN_HEAP
    tri_task_t *ready_next;     //  ready queue
    tri_waitq_t joiners;        //  tasks parked in tri_task_join on us
    tri_node_t wait_node;       //  in the wait queue it parks on, if any
    tri_task_t *all_prev;       //  s_all: every task not yet freed
    tri_task_t *all_next;
    //  Stack mapping: the guard page [map, map + page), then the stack.
    char *map;                  //  NULL once the stack is given back
    size_t map_size;
    unsigned vg_stack;          //  valgrind's id for the stack
#ifdef TRI_TASK_ASAN
    void *fake_stack;           //  ASan's fake stack while switched out
#endif
};

typedef struct {
    char *map;
    unsigned vg_stack;
} cached_stack_t;

//  The scheduler: runtime thread only.
static size_t s_page;                   //  0 until s_defaults ()
static size_t s_default_map;            //  mapping size for stack_size 0
static machine_t s_loop_context;        //  the loop while a task runs
static tri_task_t *s_current;
static tri_task_t *s_ready_head;
static tri_task_t *s_ready_tail;
static tri_task_t *s_all;
static size_t s_alive;
static tri_task_t **s_heap;             //  parked tasks with a deadline
static size_t s_heap_size;
static size_t s_heap_cap;               //  >= s_alive, so park never allocates
static uint64_t s_park_seq;
static cached_stack_t s_cache [STACK_CACHE_MAX];
static size_t s_cached;
static size_t s_mapped;                 //  stacks mmap'ed since init
static tri_spares_t s_spares = { NULL, 0, TRI_SPARES_MAX };   //  task records
#ifdef TRI_TASK_ASAN
static const void *s_loop_bottom;       //  the loop's stack, learnt by the
static size_t s_loop_size;              //  first task switched to
static void *s_loop_fake;
#endif

//  --------------------------------------------------------------------------
//  Stacks

static void
s_defaults (void)
{
    if (s_page)
        return;
    long page = sysconf (_SC_PAGESIZE);
    s_page = page > 0? (size_t) page: 4096;
    s_default_map = (TRI_DEFAULT_STACK + s_page - 1) / s_page * s_page + s_page;
}

//  Mapping size for a stack of at least size usable bytes.
static size_t
s_map_size (size_t size)
{
    assert (size < SIZE_MAX / 2);
    return (size + s_page - 1) / s_page * s_page + s_page;
}

static void
s_stack_unmap (char *map, size_t map_size, unsigned vg_stack)
{
    VALGRIND_STACK_DEREGISTER (vg_stack);
    munmap (map, map_size);
}

static void
s_cache_flush (void)
{
    while (s_cached > 0) {
        s_cached--;
        s_stack_unmap (s_cache [s_cached].map, s_default_map,
                       s_cache [s_cached].vg_stack);
    }
}

//  Give task a stack of at least stack_size bytes (0 = default) with a
//  guard page below it. Returns 0 or -1.
static int
s_stack_get (tri_task_t *task, size_t stack_size)
{
    size_t map_size = stack_size? s_map_size (stack_size): s_default_map;
    if (map_size == s_default_map && s_cached > 0) {
        s_cached--;
        task->map = s_cache [s_cached].map;
        task->vg_stack = s_cache [s_cached].vg_stack;
        task->map_size = map_size;
        return 0;
    }
    //  MAP_NORESERVE: a thousand idle tasks should not commit a thousand
    //  stacks' worth of swap; pages are touched only as deep as they run.
    char *map = mmap (NULL, map_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                      -1, 0);
    if (map == MAP_FAILED)
        return -1;
    if (mprotect (map, s_page, PROT_NONE)) {
        munmap (map, map_size);
        return -1;
    }
    task->map = map;
    task->map_size = map_size;
    task->vg_stack = VALGRIND_STACK_REGISTER (map + s_page, map + map_size);
    s_mapped++;
    return 0;
}

static void
s_stack_put (tri_task_t *task)
{
#ifdef TRI_TASK_ASAN
    //  The task's frames never returned: their redzones are still poisoned.
    __asan_unpoison_memory_region (task->map + s_page, task->map_size - s_page);
#endif
    if (task->map_size == s_default_map && s_cached < STACK_CACHE_MAX) {
        s_cache [s_cached].map = task->map;
        s_cache [s_cached].vg_stack = task->vg_stack;
        s_cached++;
    }
    else
        s_stack_unmap (task->map, task->map_size, task->vg_stack);
    task->map = NULL;
}


//  --------------------------------------------------------------------------
//  Deadline heap, keyed on (deadline, park_seq)

static bool
s_heap_less (const tri_task_t *a, const tri_task_t *b)
{
    return a->deadline < b->deadline
        || (a->deadline == b->deadline && a->park_seq < b->park_seq);
}

static void
s_heap_place (size_t index, tri_task_t *task)
{
    s_heap [index] = task;
    task->heap_index = index;
}

static void
s_heap_up (size_t index)
{
    tri_task_t *task = s_heap [index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!s_heap_less (task, s_heap [parent]))
            break;
        s_heap_place (index, s_heap [parent]);
        index = parent;
    }
    s_heap_place (index, task);
}

static void
s_heap_down (size_t index)
{
    tri_task_t *task = s_heap [index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= s_heap_size)
            break;
        if (child + 1 < s_heap_size && s_heap_less (s_heap [child + 1], s_heap [child]))
            child++;
        if (!s_heap_less (s_heap [child], task))
            break;
        s_heap_place (index, s_heap [child]);
        index = child;
    }
    s_heap_place (index, task);
}

static void
s_heap_push (tri_task_t *task)
{
    assert (s_heap_size < s_heap_cap);
    s_heap_place (s_heap_size++, task);
    s_heap_up (task->heap_index);
}

static void
s_heap_remove (tri_task_t *task)
{
    size_t index = task->heap_index;
    task->heap_index = NOT_IN_HEAP;
    s_heap_size--;
    if (index < s_heap_size) {
        tri_task_t *last = s_heap [s_heap_size];
        s_heap_place (index, last);
        s_heap_down (index);
        s_heap_up (last->heap_index);
    }
}

//  Room for every live task, so that parking never allocates.
static int
s_heap_reserve (size_t count)
{
    if (count <= s_heap_cap)
        return 0;
    size_t cap = s_heap_cap? s_heap_cap * 2: 64;
    while (cap < count)
        cap *= 2;
    tri_task_t **heap = realloc (s_heap, cap * sizeof *heap);
    if (!heap)
        return -1;
    s_heap = heap;
    s_heap_cap = cap;
    return 0;
}


//  --------------------------------------------------------------------------
//  Switching

#ifdef TRI_ASM_SWITCH
//  tri_machine_switch (&from->sp, to->sp): push the callee-saved registers
//  (and the floating-point control words) on the running stack, store its
//  pointer in *from, load to's and pop what it pushed when it left. A new
//  coroutine's stack is laid out as if it had left from tri_machine_start,
//  which calls tri_task_entry (task) with the task in a callee-saved
//  register.
void tri_machine_switch (void **from, void *to);
void tri_machine_start (void);
#   if defined (__x86_64__)
__asm__ (
    ".text\n"
    ".p2align 4\n"
    ".globl tri_machine_switch\n"
    ".hidden tri_machine_switch\n"
    ".type tri_machine_switch, @function\n"
    "tri_machine_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size tri_machine_switch, .-tri_machine_switch\n"
    ".p2align 4\n"
    ".globl tri_machine_start\n"
    ".hidden tri_machine_start\n"
    ".type tri_machine_start, @function\n"
    "tri_machine_start:\n"
    "    movq %rbx, %rdi\n"
    "    call tri_task_entry\n"
    "    ud2\n"
    ".size tri_machine_start, .-tri_machine_start\n"
);
#   elif defined (__aarch64__)
__asm__ (
    ".text\n"
    ".p2align 4\n"
    ".globl tri_machine_switch\n"
    ".hidden tri_machine_switch\n"
    ".type tri_machine_switch, %function\n"
    "tri_machine_switch:\n"
    "    sub sp, sp, #176\n"
    "    stp x19, x20, [sp, #0]\n"
    "    stp x21, x22, [sp, #16]\n"
    "    stp x23, x24, [sp, #32]\n"
    "    stp x25, x26, [sp, #48]\n"
    "    stp x27, x28, [sp, #64]\n"
    "    stp x29, x30, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    mrs x2, fpcr\n"
    "    str x2, [sp, #160]\n"
    "    mov x2, sp\n"
    "    str x2, [x0]\n"
    "    mov sp, x1\n"
    "    ldr x2, [sp, #160]\n"
    "    msr fpcr, x2\n"
    "    ldp x19, x20, [sp, #0]\n"
    "    ldp x21, x22, [sp, #16]\n"
    "    ldp x23, x24, [sp, #32]\n"
    "    ldp x25, x26, [sp, #48]\n"
    "    ldp x27, x28, [sp, #64]\n"
    "    ldp x29, x30, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    add sp, sp, #176\n"
    "    ret\n"
    ".size tri_machine_switch, .-tri_machine_switch\n"
    ".p2align 4\n"
    ".globl tri_machine_start\n"
    ".hidden tri_machine_start\n"
    ".type tri_machine_start, %function\n"
    "tri_machine_start:\n"
    "    mov x0, x19\n"
    "    bl tri_task_entry\n"
    "    brk #0\n"
    ".size tri_machine_start, .-tri_machine_start\n"
);
#   endif
#endif

//  Save the running context in from and resume to. Under ASan with
//  ucontext, swapcontext goes through an interceptor whose only use to us
//  is a warning that false positives may follow; getcontext + setcontext
//  are not intercepted and the fiber annotations around each switch tell
//  ASan what it needs.
static void __attribute__ ((noinline))
s_swap (machine_t *from, const machine_t *to)
{
#if defined (TRI_ASM_SWITCH)
    tri_machine_switch (&from->sp, to->sp);
#elif defined (TRI_TASK_ASAN)
    volatile bool resumed = false;
    getcontext (from);
    if (!resumed) {
        resumed = true;
        setcontext (to);
    }
#else
    swapcontext (from, to);
#endif
}

static void
s_ready_push (tri_task_t *task)
{
    task->state = TASK_READY;
    task->ready_next = NULL;
    if (s_ready_tail)
        s_ready_tail->ready_next = task;
    else
        s_ready_head = task;
    s_ready_tail = task;
}

//  Loop to task, and back when it parks or ends.
static void
s_enter (tri_task_t *task)
{
    s_current = task;
    task->state = TASK_RUNNING;
#ifdef TRI_TASK_ASAN
    __sanitizer_start_switch_fiber (&s_loop_fake, task->map + s_page,
                                    task->map_size - s_page);
#endif
    s_swap (&s_loop_context, &task->context);
#ifdef TRI_TASK_ASAN
    __sanitizer_finish_switch_fiber (s_loop_fake, NULL, NULL);
#endif
    s_current = NULL;
}

//  Task to loop, and back when the loop runs it again.
static void
s_leave (tri_task_t *self)
{
#ifdef TRI_TASK_ASAN
    __sanitizer_start_switch_fiber (&self->fake_stack, s_loop_bottom, s_loop_size);
#endif
    s_swap (&self->context, &s_loop_context);
#ifdef TRI_TASK_ASAN
    __sanitizer_finish_switch_fiber (self->fake_stack, &s_loop_bottom, &s_loop_size);
#endif
}

static void
s_unlink (tri_task_t *task)
{
    if (task->all_prev)
        task->all_prev->all_next = task->all_next;
    else
        s_all = task->all_next;
    if (task->all_next)
        task->all_next->all_prev = task->all_prev;
}

//  First frame of every task; it never returns. Not static: the assembly
//  of tri_machine_start calls it (hidden, like every tri_ name).
void tri_task_entry (tri_task_t *self) __attribute__ ((used, noreturn));

void
tri_task_entry (tri_task_t *self)
{
#ifdef TRI_TASK_ASAN
    __sanitizer_finish_switch_fiber (NULL, &s_loop_bottom, &s_loop_size);
#endif
    self->fn (self->arg);

    self->state = TASK_DONE;
    s_alive--;
    tri_waitq_wake_all (&self->joiners, 0);
    //  The loop frees our stack; we never come back. NULL: ASan may free
    //  this fiber's fake stack.
#ifdef TRI_TASK_ASAN
    __sanitizer_start_switch_fiber (NULL, s_loop_bottom, s_loop_size);
#endif
#ifdef TRI_ASM_SWITCH
    machine_t dead;
    tri_machine_switch (&dead.sp, s_loop_context.sp);
#else
    setcontext (&s_loop_context);
#endif
    abort ();
}

#ifdef TRI_ASM_SWITCH
//  Lay out the top of task's stack as tri_machine_switch leaves it, so
//  that the first switch to it "returns" into tri_machine_start.
static int
s_context_init (tri_task_t *task)
{
    uintptr_t top = ((uintptr_t) task->map + task->map_size) & ~(uintptr_t) 15;
#   if defined (__x86_64__)
    //  From the top: 8 bytes of padding, the start address (at 16n + 8,
    //  so that the call in tri_machine_start leaves the stack as the ABI
    //  wants it), rbp rbx r12 r13 r14 r15, then MXCSR and the x87 control
    //  word.
    uint64_t *sp = (uint64_t *) (top - 16);
    *--sp = (uint64_t) (uintptr_t) tri_machine_start;
    *--sp = 0;                              //  rbp
    *--sp = (uint64_t) (uintptr_t) task;    //  rbx
    *--sp = 0;                              //  r12
    *--sp = 0;                              //  r13
    *--sp = 0;                              //  r14
    *--sp = 0;                              //  r15
    --sp;
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile ("stmxcsr %0" : "=m" (mxcsr));
    __asm__ volatile ("fnstcw %0" : "=m" (fpucw));
    memcpy ((char *) sp, &mxcsr, 4);
    memcpy ((char *) sp + 4, &fpucw, 2);
    task->context.sp = sp;
#   elif defined (__aarch64__)
    //  176 bytes as tri_machine_switch pushes them: x19 the task, x30
    //  (the return address) the start, the rest zero, fpcr ours.
    uint64_t *sp = (uint64_t *) (top - 176);
    memset (sp, 0, 176);
    sp [0] = (uint64_t) (uintptr_t) task;                   //  x19
    sp [11] = (uint64_t) (uintptr_t) tri_machine_start;     //  x30
    uint64_t fpcr;
    __asm__ volatile ("mrs %0, fpcr" : "=r" (fpcr));
    sp [20] = fpcr;
    task->context.sp = sp;
#   endif
    return 0;
}
#else
//  makecontext passes only ints, so the task pointer comes in two halves.
static void
s_task_start (int high, int low)
{
    uintptr_t bits = ((uintptr_t) (uint32_t) high << 16 << 16) | (uint32_t) low;
    tri_task_entry ((tri_task_t *) bits);
}

//  Make task's context start tri_task_entry on its stack. Apart, because
//  getcontext returns twice as far as the compiler knows.
static int __attribute__ ((noinline))
s_context_init (tri_task_t *task)
{
    if (getcontext (&task->context))
        return -1;
    task->context.uc_stack.ss_sp = task->map + s_page;
    task->context.uc_stack.ss_size = task->map_size - s_page;
    task->context.uc_link = NULL;
    uintptr_t bits = (uintptr_t) task;
    makecontext (&task->context, (void (*) (void)) s_task_start, 2,
                 (int) (uint32_t) (bits >> 16 >> 16), (int) (uint32_t) bits);
    return 0;
}
#endif

//  Loop side of a task's end.
static void
s_task_free (tri_task_t *task)
{
    s_unlink (task);
    if (!tri_spares_push (&s_spares, task))
        free (task);
}

static void
s_task_ended (tri_task_t *task)
{
    s_stack_put (task);
    if (!task->joinable)
        s_task_free (task);
}

//  A zeroed task record: a spare one (a task per served call costs no
//  malloc), or a new one.
static tri_task_t *
s_task_alloc (void)
{
    tri_task_t *task = tri_spares_pop (&s_spares);
    if (!task)
        return calloc (1, sizeof *task);
    memset (task, 0, sizeof *task);
    return task;
}


//  --------------------------------------------------------------------------
//  Set up the scheduler of this process.

int
tri_sched_init (size_t default_stack)
{
    assert (!s_current);
    s_defaults ();
    size_t map_size = s_map_size (default_stack? default_stack: TRI_DEFAULT_STACK);
    if (map_size != s_default_map) {
        s_cache_flush ();
        s_default_map = map_size;
    }
    s_mapped = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Free every stack and finished task.

void
tri_sched_term (void)
{
    assert (!s_current);
    assert (s_alive == 0);
    while (s_all) {
        tri_task_t *task = s_all;
        assert (task->state == TASK_DONE && !task->map);
        s_unlink (task);
        free (task);
    }
    tri_spares_drain (&s_spares, free);
    s_cache_flush ();
    free (s_heap);
    s_heap = NULL;
    s_heap_size = 0;
    s_heap_cap = 0;
    s_ready_head = NULL;
    s_ready_tail = NULL;
    s_mapped = 0;
}

size_t
tri_sched_alive (void)
{
    return s_alive;
}

//  --------------------------------------------------------------------------
//  Run ready tasks until none is ready; return the number of switches.

int
tri_sched_run (void)
{
    assert (!s_current);
    int switches = 0;
    while (s_ready_head) {
        tri_task_t *task = s_ready_head;
        s_ready_head = task->ready_next;
        if (!s_ready_head)
            s_ready_tail = NULL;
        task->ready_next = NULL;
        s_enter (task);
        switches++;
        if (task->state == TASK_DONE)
            s_task_ended (task);
    }
    return switches;
}

bool
tri_sched_has_ready (void)
{
    return s_ready_head != NULL;
}

int64_t
tri_sched_next_deadline (void)
{
    return s_heap_size? s_heap [0]->deadline: -1;
}

//  --------------------------------------------------------------------------
//  Wake every parked task whose deadline is <= now, earliest first.

void
tri_sched_expire (int64_t now)
{
    while (s_heap_size && s_heap [0]->deadline <= now)
        tri_task_wake (s_heap [0], TR_ETIMEDOUT);
}

//  --------------------------------------------------------------------------
//  New task, ready to run.

tri_task_t *
tri_task_new (tri_task_fn *fn, void *arg, size_t stack_size, bool joinable)
{
    assert (fn);
    s_defaults ();
    if (s_heap_reserve (s_alive + 1))
        return NULL;
    tri_task_t *self = s_task_alloc ();
    if (!self)
        return NULL;
    if (s_stack_get (self, stack_size))
        goto fail;
    if (s_context_init (self))
        goto fail;
    self->fn = fn;
    self->arg = arg;
    self->joinable = joinable;
    atomic_init (&self->cancelled, false);
    tri_waitq_init (&self->joiners);
    tri_node_init (&self->wait_node);
    self->deadline = -1;
    self->heap_index = NOT_IN_HEAP;

    self->all_next = s_all;
    if (s_all)
        s_all->all_prev = self;
    s_all = self;
    s_alive++;
    s_ready_push (self);
    return self;

fail:
    if (self->map)
        s_stack_put (self);
    free (self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Free a finished joinable task.

void
tri_task_destroy (tri_task_t **task)
{
    assert (task);
    tri_task_t *self = *task;
    if (!self)
        return;
    assert (self->joinable && self->state == TASK_DONE && tri_waitq_empty (&self->joiners));
    s_task_free (self);
    *task = NULL;
}

tri_task_t *
tri_task_current (void)
{
    return s_current;
}

bool
tri_task_done (const tri_task_t *task)
{
    assert (task);
    return task->state == TASK_DONE;
}

static int
s_park (int64_t deadline, bool shielded)
{
    tri_task_t *self = s_current;
    assert (self);
    if (!shielded && atomic_load (&self->cancelled))
        return TR_ECANCELED;
    self->state = TASK_PARKED;
    self->shielded = shielded;
    self->wake_rc = 0;
    self->deadline = deadline;
    if (deadline >= 0) {
        self->park_seq = s_park_seq++;
        s_heap_push (self);
    }
    s_leave (self);
    return self->wake_rc;
}

//  --------------------------------------------------------------------------
//  Park until woken, the deadline or (unshielded) cancellation.

int
tri_task_park (int64_t deadline)
{
    return s_park (deadline, false);
}

int
tri_task_park_shielded (int64_t deadline)
{
    return s_park (deadline, true);
}

//  --------------------------------------------------------------------------
//  Make a parked task ready; its park returns rc.

void
tri_task_wake (tri_task_t *task, int rc)
{
    assert (task);
    if (task->state != TASK_PARKED)
        return;
    tri_node_unlink (&task->wait_node);
    if (task->heap_index != NOT_IN_HEAP)
        s_heap_remove (task);
    task->wake_rc = rc;
    s_ready_push (task);
}

//  --------------------------------------------------------------------------
//  Mark cancelled and wake the task if it waits unshielded.

void
tri_task_cancel (tri_task_t *task)
{
    assert (task);
    atomic_store (&task->cancelled, true);
    if (task->state == TASK_PARKED && !task->shielded)
        tri_task_wake (task, TR_ECANCELED);
}

bool
tri_task_cancelled (const tri_task_t *task)
{
    assert (task);
    return atomic_load (&((tri_task_t *) task)->cancelled);
}

//  --------------------------------------------------------------------------
//  Park until task ends, the deadline passes or (unshielded) the caller is
//  cancelled.

static int
s_join (tri_task_t *task, int64_t deadline, bool shielded)
{
    assert (s_current && task && task != s_current && task->joinable);
    while (task->state != TASK_DONE) {
        int rc = shielded? tri_waitq_wait_shielded (&task->joiners, deadline)
                         : tri_waitq_wait (&task->joiners, deadline);
        if (rc && task->state != TASK_DONE)
            return rc;
    }
    return 0;
}

int
tri_task_join (tri_task_t *task, int64_t deadline)
{
    return s_join (task, deadline, false);
}

int
tri_task_join_shielded (tri_task_t *task, int64_t deadline)
{
    return s_join (task, deadline, true);
}

//  --------------------------------------------------------------------------
//  Wait queues: any number of tasks wait on one event, each with its own
//  deadline; waking them is one call. A task is in at most one queue, and
//  leaves it whatever woke it (tri_task_wake unlinks it).

void
tri_waitq_init (tri_waitq_t *self)
{
    tri_list_init (&self->tasks);
}

bool
tri_waitq_empty (const tri_waitq_t *self)
{
    return tri_list_empty (&self->tasks);
}

static int
s_wait (tri_waitq_t *self, int64_t deadline, bool shielded)
{
    tri_task_t *me = s_current;
    assert (me);
    if (!shielded && atomic_load (&me->cancelled))
        return TR_ECANCELED;
    tri_list_push_back (&self->tasks, &me->wait_node);
    int rc = s_park (deadline, shielded);
    tri_node_unlink (&me->wait_node);
    return rc;
}

int
tri_waitq_wait (tri_waitq_t *self, int64_t deadline)
{
    return s_wait (self, deadline, false);
}

int
tri_waitq_wait_shielded (tri_waitq_t *self, int64_t deadline)
{
    return s_wait (self, deadline, true);
}

void
tri_waitq_wake_one (tri_waitq_t *self, int rc)
{
    tri_node_t *node = tri_list_first (&self->tasks);
    if (node)
        tri_task_wake (tri_list_entry (node, tri_task_t, wait_node), rc);
}

void
tri_waitq_wake_all (tri_waitq_t *self, int rc)
{
    tri_node_t *node;
    while ((node = tri_list_first (&self->tasks)))
        tri_task_wake (tri_list_entry (node, tri_task_t, wait_node), rc);
}

void *
tri_task_data (const tri_task_t *task)
{
    assert (task);
    return task->data;
}

void
tri_task_set_data (tri_task_t *task, void *data)
{
    assert (task);
    task->data = data;
}

//  --------------------------------------------------------------------------
//  For the SIGSEGV handler: a walk of the task list, no lock, no malloc.
//  The fault is synchronous, in task code, never halfway through an edit
//  of the list.

bool
tri_task_is_guard (const void *addr)
{
    uintptr_t at = (uintptr_t) addr;
    for (const tri_task_t *task = s_all; task; task = task->all_next)
        if (task->map && at >= (uintptr_t) task->map
        &&  at < (uintptr_t) task->map + s_page)
            return true;
    return false;
}


//  --------------------------------------------------------------------------
//  Counters for the tests.

size_t
tri_sched_stacks_mapped (void)
{
    return s_mapped;
}

size_t
tri_sched_stacks_cached (void)
{
    return s_cached;
}
