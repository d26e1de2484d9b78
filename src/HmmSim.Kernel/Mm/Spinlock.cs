using System.Diagnostics.CodeAnalysis;

namespace HmmSim.Kernel;

/// <summary>spinlock_t (include/linux/spinlock.h): a busy-waiting lock for short critical sections that
/// never sleep, fault or take a sleeping lock. An uncontended acquire and release is one compare-and-swap
/// and one store, about a third of what System.Threading.Lock costs, which is why the per-page allocator
/// and free-list paths use it. Not recursive: taking it twice on one thread is the deadlock
/// CONFIG_DEBUG_SPINLOCK reports ("recursion"), and the model oopses instead of hanging. Releasing a lock
/// this thread does not hold oopses too ("wrong owner"). A field of this type must not be readonly or
/// copied: the state is the struct itself.</summary>
public struct Spinlock
{
    // 0 when free, else the managed thread id of the holder (what debug spinlocks keep in ->owner).
    private int _owner;

    /// <summary>Whether this thread holds the lock (lockdep_assert_held for a spinlock).</summary>
    public readonly bool IsHeldByCurrentThread => Volatile.Read(in _owner) == Environment.CurrentManagedThreadId;

    /// <summary>spin_lock: returns once the lock is this thread's.</summary>
    public void Lock()
    {
        int me = Environment.CurrentManagedThreadId;
        if (Interlocked.CompareExchange(ref _owner, me, 0) != 0)
            LockSlow(me);
    }

    private void LockSlow(int me)
    {
        if (Volatile.Read(ref _owner) == me)
            ThrowHelper.KernelBug("BUG: spinlock recursion: this thread already holds the lock");
        // Spin on a plain read and try the swap only when the lock looks free (queued_spin_lock_slowpath's
        // wait for the lock word); on a machine with fewer cores than spinners, SpinWait also yields so a
        // preempted holder gets to run.
        var spin = new SpinWait();
        do
        {
            spin.SpinOnce();
        }
        while (Volatile.Read(ref _owner) != 0 || Interlocked.CompareExchange(ref _owner, me, 0) != 0);
    }

    /// <summary>spin_unlock.</summary>
    public void Unlock()
    {
        if (_owner != Environment.CurrentManagedThreadId)
            ThrowHelper.KernelBug("BUG: spinlock wrong owner: unlocking a lock this thread does not hold");
        Volatile.Write(ref _owner, 0);
    }

    /// <summary>spin_lock with the unlock at the end of a <c>using</c> scope (the kernel's guard(spinlock)).</summary>
    [UnscopedRef]
    public Guard Acquire()
    {
        Lock();
        return new Guard(ref this);
    }

    /// <summary>Releases the lock it was made for when disposed.</summary>
    public ref struct Guard
    {
        private ref Spinlock _lock;

        internal Guard(ref Spinlock l) => _lock = ref l;

        /// <summary>spin_unlock.</summary>
        public readonly void Dispose() => _lock.Unlock();
    }
}
