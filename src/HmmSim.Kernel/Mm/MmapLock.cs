namespace HmmSim.Kernel;

/// <summary>mm->mmap_lock (include/linux/mmap_lock.h): a sleeping reader-writer lock. Under a
/// <see cref="DeterministicScheduler"/> taking it is a scheduling point, and a contended acquire gives
/// the CPU to another thread instead of blocking, as a sleeping lock does; otherwise it is a plain
/// reader-writer lock.</summary>
internal sealed class MmapLock : IDisposable
{
    private readonly ReaderWriterLockSlim _rw = new(LockRecursionPolicy.NoRecursion);

    /// <summary>mmap_read_lock.</summary>
    public void EnterReadLock()
    {
        if (DeterministicScheduler.Current is not { } s)
        {
            _rw.EnterReadLock();
            return;
        }
        s.Point("mmap_read_lock");
        while (!_rw.TryEnterReadLock(0))
            s.Blocked("mmap_read_lock");
    }

    /// <summary>mmap_write_lock.</summary>
    public void EnterWriteLock()
    {
        if (DeterministicScheduler.Current is not { } s)
        {
            _rw.EnterWriteLock();
            return;
        }
        s.Point("mmap_write_lock");
        while (!_rw.TryEnterWriteLock(0))
            s.Blocked("mmap_write_lock");
    }

    /// <summary>mmap_read_unlock: a scheduling point after the release.</summary>
    public void ExitReadLock()
    {
        _rw.ExitReadLock();
        DeterministicScheduler.Current?.Point("mmap_read_unlock");
    }

    /// <summary>mmap_write_unlock: a scheduling point after the release.</summary>
    public void ExitWriteLock()
    {
        _rw.ExitWriteLock();
        DeterministicScheduler.Current?.Point("mmap_write_unlock");
    }

    public void Dispose() => _rw.Dispose();

    public bool IsWriteLockHeld => _rw.IsWriteLockHeld;
    public bool IsReadLockHeld => _rw.IsReadLockHeld;
}
