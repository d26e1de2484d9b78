namespace HmmSim.Kernel;

/// <summary>struct mm_struct: one address space. mmap_lock is a reader-writer lock (faults read,
/// VMA changes write); page-table entries change under <see cref="PageTableLock"/> (the kernel's
/// mm->page_table_lock, as configured without split PTE locks).</summary>
public sealed partial class MmStruct : IDisposable
{
    internal MmStruct(KernelState kernel)
    {
        Kernel = kernel;
        Pgd = AllocTable();
        MmapBase = kernel.Arch.TaskSize & ~(Arch.PudSize - 1);
        MmapBase -= Arch.PudSize;   // leave a gap below TASK_SIZE, as the stack randomization gap would
    }

    internal KernelState Kernel { get; }
    /// <summary>The pid of the task owning this mm (mm->owner), for the task column of trace events.</summary>
    internal int Pid { get; set; }
    internal Arch Arch => Kernel.Arch;
    internal VmaTree Vmas { get; } = new();
    internal MmapLock MmapLock { get; } = new();
    internal Lock PageTableLock { get; } = new();
    /// <summary>The top-level table page (mm->pgd).</summary>
    internal Pfn Pgd { get; private set; }
    /// <summary>mm->mmap_base: top-down get_unmapped_area starts below it.</summary>
    internal ulong MmapBase { get; }
    internal MmuNotifierSubscriptions? Notifiers { get; set; }

    // rss_stat (MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES) and pgtables_bytes
    internal long AnonRss;
    internal long FileRss;
    internal long ShmemRss;
    internal long PgtablesBytes;
    internal bool Exited { get; private set; }

    /// <summary>exit_mmap: tear the address space down (unmap every VMA, free the page tables). Idempotent.</summary>
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
