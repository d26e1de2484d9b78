namespace HmmSim;

/// <summary>struct mm_struct: one address space. mmap_lock is a reader-writer lock (faults read,
/// VMA changes write); page-table entries change under <see cref="PageTableLock"/> (the kernel's
/// mm->page_table_lock, as configured without split PTE locks).</summary>
internal sealed partial class MmStruct : IDisposable
{
    public MmStruct(Kernel kernel)
    {
        Kernel = kernel;
        Pgd = AllocTable();
        MmapBase = kernel.Arch.TaskSize & ~(Arch.PudSize - 1);
        MmapBase -= Arch.PudSize;   // leave a gap below TASK_SIZE, as the stack randomization gap would
    }

    public Kernel Kernel { get; }
    public Arch Arch => Kernel.Arch;
    public VmaTree Vmas { get; } = new();
    public ReaderWriterLockSlim MmapLock { get; } = new(LockRecursionPolicy.NoRecursion);
    public Lock PageTableLock { get; } = new();
    /// <summary>The top-level table page (mm->pgd).</summary>
    public Pfn Pgd { get; private set; }
    /// <summary>mm->mmap_base: top-down get_unmapped_area starts below it.</summary>
    public ulong MmapBase { get; }
    public MmuNotifierSubscriptions? Notifiers { get; set; }

    // rss_stat (MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES) and pgtables_bytes
    public long AnonRss;
    public long FileRss;
    public long ShmemRss;
    public long PgtablesBytes;
    public bool Exited { get; private set; }

    public void Dispose()
    {
        if (Exited)
            return;
        Exited = true;
        MmapLock.EnterWriteLock();
        try
        {
            Mmap.ExitMmap(this);
        }
        finally
        {
            MmapLock.ExitWriteLock();
        }
    }
}
