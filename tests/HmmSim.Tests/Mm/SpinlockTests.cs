using HmmSim.Kernel;

namespace HmmSim.Tests.Mm;

/// <summary>spinlock_t: mutual exclusion between threads, and the debug checks a recursive lock or an
/// unlock by a thread that does not hold it trip (an oops, not a hang).</summary>
public class SpinlockTests
{
    private sealed class Counter
    {
        public Spinlock Lock;
        public long Value;
    }

    [Fact]
    public void ThreadsIncrementingUnderTheLockLoseNoUpdate()
    {
        var c = new Counter();
        const int PerThread = 200_000;
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            threads[t] = new Thread(() =>
            {
                for (int i = 0; i < PerThread; i++)
                {
                    using (c.Lock.Acquire())
                    {
                        // A read and a write apart: without exclusion, increments of other threads get lost.
                        long v = c.Value;
                        Thread.SpinWait(1);
                        c.Value = v + 1;
                    }
                }
            });
            threads[t].Start();
        }
        foreach (var t in threads)
            t.Join();
        Assert.Equal(threads.Length * (long)PerThread, c.Value);
        Assert.False(c.Lock.IsHeldByCurrentThread);
    }

    [Fact]
    public void TakingTheLockTwiceOnOneThreadOopsesInsteadOfHanging()
    {
        var c = new Counter();
        c.Lock.Lock();
        Assert.True(c.Lock.IsHeldByCurrentThread);
        var ex = Assert.Throws<KernelBugException>(() => c.Lock.Lock());
        Assert.Contains("recursion", ex.Message, StringComparison.Ordinal);
        c.Lock.Unlock();
        Assert.False(c.Lock.IsHeldByCurrentThread);
    }

    [Fact]
    public void UnlockingALockAnotherThreadHoldsOopses()
    {
        var c = new Counter();
        Assert.Throws<KernelBugException>(() => c.Lock.Unlock());
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var holder = new Thread(() =>
        {
            c.Lock.Lock();
            held.Set();
            release.Wait();
            c.Lock.Unlock();
        });
        holder.Start();
        held.Wait();
        Assert.False(c.Lock.IsHeldByCurrentThread);
        var ex = Assert.Throws<KernelBugException>(() => c.Lock.Unlock());
        Assert.Contains("wrong owner", ex.Message, StringComparison.Ordinal);
        release.Set();
        holder.Join();
        // Released by its holder: this thread can take it now.
        using (c.Lock.Acquire())
            Assert.True(c.Lock.IsHeldByCurrentThread);
    }

    [Fact]
    public void AWaiterGetsTheLockOnceTheHolderReleasesIt()
    {
        var c = new Counter();
        c.Lock.Lock();
        var waiter = new Thread(() =>
        {
            using (c.Lock.Acquire())
                c.Value = 1;
        });
        waiter.Start();
        // The waiter cannot finish while the lock is held here.
        Assert.False(waiter.Join(50));
        Assert.Equal(0, c.Value);
        c.Lock.Unlock();
        waiter.Join();
        Assert.Equal(1, c.Value);
    }
}
