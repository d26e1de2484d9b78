namespace HmmSim.Kernel;

/// <summary>The mm functions a driver module may call (EXPORT_SYMBOL and the inline helpers of
/// include/linux/mm.h, gfp.h, highmem.h, mmap_lock.h, pagemap.h), under their kernel names. The
/// rest of mm is internal to the kernel. A driver imports this with <c>using static</c> and reads
/// as the C does.</summary>
public static class Mm
{
    // --- page allocator (mm/page_alloc.c, include/linux/gfp.h) ---------------------------------

    /// <summary>alloc_pages(GFP_KERNEL | __GFP_COMP, order): a compound folio when order &gt; 0;
    /// a null page when memory is exhausted.</summary>
    public static Page AllocPages(KernelState kernel, int order)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return kernel.Buddy.Alloc(order, compound: order > 0);
    }

    /// <summary>alloc_pages_bulk(GFP_KERNEL, nr_pages, page_array): order-0 pages for every entry of
    /// <paramref name="pages"/> under one hold of the allocator's lock; returns how many were allocated
    /// (the first ones), fewer only when memory is exhausted.</summary>
    public static int AllocPagesBulk(KernelState kernel, Span<Page> pages)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return kernel.Buddy.AllocBulk(pages);
    }

    /// <summary>folio_alloc(GFP_HIGHUSER_MOVABLE, order): a folio for user data, or null.</summary>
    public static Folio? FolioAlloc(KernelState kernel, int order)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return Memory.AllocUserFolio(kernel, order);
    }

    // --- folio and page helpers (include/linux/mm.h, page-flags.h) ------------------------------

    /// <summary>folio_get: take one more reference (atomic; the caller must already hold one).</summary>
    public static void FolioGet(Folio folio) => folio.Get();
    /// <summary>folio_put: the last reference frees the folio (a ZONE_DEVICE one through its pagemap).</summary>
    public static void FolioPut(Folio folio) => folio.Put();
    /// <summary>folio_lock: wait until PG_locked is ours. Not reentrant: locking a folio this thread
    /// already holds never returns, as in the kernel.</summary>
    public static void FolioLock(Folio folio) => folio.Lock();
    /// <summary>folio_unlock: release PG_locked; unlocking an unlocked folio is a BUG.</summary>
    public static void FolioUnlock(Folio folio) => folio.Unlock();
    /// <summary>page_folio.</summary>
    public static Folio PageFolio(Page page) => page.Folio;
    /// <summary>folio_page.</summary>
    public static Page FolioPage(Folio folio, int n) => folio.Page(n);
    /// <summary>folio_page_idx: the page's index within its folio.</summary>
    public static int FolioPageIdx(Folio folio, Page page) => (int)(page.Number - folio.Page().Number);
    /// <summary>folio_order.</summary>
    public static int FolioOrder(Folio folio) => folio.Order;
    /// <summary>folio_nr_pages.</summary>
    public static int FolioNrPages(Folio folio) => folio.NrPages;
    /// <summary>page_pgmap: the pagemap of a ZONE_DEVICE page, read through its folio (seed 003).</summary>
    public static DevPagemap? PagePgmap(Page page) => page.Pgmap;
    /// <summary>page_to_pfn.</summary>
    public static Pfn PageToPfn(Page page) => page.ToPfn();
    /// <summary>is_zone_device_page.</summary>
    public static bool IsZoneDevicePage(Page page) => page.IsZoneDevice;
    /// <summary>is_device_private_page.</summary>
    public static bool IsDevicePrivatePage(Page page) => page.IsDevicePrivate;
    /// <summary>is_device_coherent_page.</summary>
    public static bool IsDeviceCoherentPage(Page page) => page.IsDeviceCoherent;
    /// <summary>is_pci_p2pdma_page.</summary>
    public static bool IsPciP2pdmaPage(Page page) => page.IsPciP2pDma;
    /// <summary>is_zero_pfn.</summary>
    public static bool IsZeroPfn(KernelState kernel, Pfn pfn)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return pfn == kernel.ZeroPfn;
    }

    /// <summary>folio_reset_order: the folio is order 0 again (its head flag and order cleared).</summary>
    public static void FolioResetOrder(Folio folio)
    {
        ref var d = ref folio.HeadFor(PageField.Order, true);
        d.Flags &= ~(uint)(PageFlags.Head | PageFlags.HighByteMask);
    }

    /// <summary>clear_compound_head: the page no longer points at a head (it becomes its own folio).</summary>
    public static void ClearCompoundHead(Page page)
    {
        ref var d = ref page.DescFor(PageField.CompoundHead, true);
        d.Flags &= ~(uint)(PageFlags.Tail | PageFlags.HighByteMask);
    }

    /// <summary>folio_set_count: overwrite the refcount (for a driver re-initialising a free device folio).</summary>
    public static void FolioSetCount(Folio folio, int count) => Volatile.Write(ref folio.HeadFor(PageField.RefCount, true).RefCount, count);

    // --- page contents (include/linux/highmem.h) ------------------------------------------------

    /// <summary>copy_highpage: <paramref name="to"/> gets <paramref name="from"/>'s 4096 bytes. The driver
    /// must pass pages it can address (the backing page of a device-private one; touching device-private
    /// memory from the CPU is a BUG).</summary>
    public static void CopyHighpage(Page to, Page from) => to.CopyDataFrom(from);

    /// <summary>folio_copy for the first <paramref name="nr"/> pages at <paramref name="to"/> and
    /// <paramref name="from"/>: copy_highpage of each, the data slots taken in one batch.</summary>
    public static void CopyHighpages(Page to, Page from, int nr) => to.CopyDataFrom(from, nr);

    /// <summary>copy_highpage of each pair, <paramref name="to"/>[i] from <paramref name="from"/>[i], or
    /// clear_highpage where the source is null: a driver's batch of 4 KiB copies made back to back, the
    /// data slots taken in one batch (docs/fidelity.md, "dmirror page allocation").</summary>
    public static void CopyHighpages(ReadOnlySpan<Page> to, ReadOnlySpan<Page> from) => Page.CopyDataEach(to, from);

    /// <summary>clear_highpage: zero the page's 4096 bytes.</summary>
    public static void ClearHighpage(Page page) => page.ClearData();

    /// <summary>memcpy_from_page: <paramref name="to"/>.Length bytes from <paramref name="offset"/> in the page.</summary>
    public static void MemcpyFromPage(Span<byte> to, Page page, int offset = 0)
    {
        if ((uint)offset > Arch.PageSize || (uint)to.Length > Arch.PageSize - (uint)offset)
            throw new ArgumentOutOfRangeException(nameof(offset), "the range is not inside the page");
        page.CopyDataTo(offset, to);
    }

    /// <summary>memcpy_to_page: <paramref name="from"/> into the page at <paramref name="offset"/>.</summary>
    public static void MemcpyToPage(Page page, int offset, ReadOnlySpan<byte> from)
    {
        if (offset == 0 && from.Length == (int)Arch.PageSize)
            page.WriteWholePage(from);
        else
            from.CopyTo(page.WriteData().Slice(offset, from.Length));
    }

    // --- address spaces (mmap_lock.h, mm.h, sched/mm.h) -----------------------------------------

    /// <summary>mmap_read_lock: take the mm's mmap_lock shared (as hmm_range_fault and migrate_vma_setup
    /// require). Not recursive; pair with <see cref="MmapReadUnlock"/> on the same thread.</summary>
    public static void MmapReadLock(MmStruct mm)
    {
        ArgumentNullException.ThrowIfNull(mm);
        mm.MmapLock.EnterReadLock();
    }

    /// <summary>mmap_read_unlock: release the shared mmap_lock this thread took.</summary>
    public static void MmapReadUnlock(MmStruct mm)
    {
        ArgumentNullException.ThrowIfNull(mm);
        mm.MmapLock.ExitReadLock();
    }

    /// <summary>mmget_not_zero: false once the address space has exited (its users dropped to zero).</summary>
    public static bool MmgetNotZero(MmStruct mm)
    {
        ArgumentNullException.ThrowIfNull(mm);
        return !mm.Exited;
    }

    /// <summary>mmput: the model's mm lives until its process exits, so there is no count to drop.</summary>
    public static void Mmput(MmStruct mm) => ArgumentNullException.ThrowIfNull(mm);

    /// <summary>vma_lookup: the VMA containing <paramref name="addr"/>, or null. Needs the mmap_lock.</summary>
    public static Vma? VmaLookup(MmStruct mm, ulong addr)
    {
        ArgumentNullException.ThrowIfNull(mm);
        return mm.Vmas.Lookup(addr);
    }

    /// <summary>vma->vm_start.</summary>
    public static ulong VmaStart(Vma vma) => vma.Start;
    /// <summary>vma->vm_end.</summary>
    public static ulong VmaEnd(Vma vma) => vma.End;
    /// <summary>vma->vm_flags.</summary>
    public static VmFlags VmaFlags(Vma vma) => vma.Flags;

    /// <summary>vm_flags_set: add flags to a VMA the driver's mmap is setting up.</summary>
    public static void VmFlagsSet(Vma vma, VmFlags flags) => vma.Flags |= flags;

    /// <summary>vma->vm_ops = ops.</summary>
    public static void VmaSetOps(Vma vma, IVmOperations ops) => vma.Ops = ops;

    /// <summary>vm_insert_page: map a kernel page into a driver's VMA with a normal PTE (a file rmap
    /// and a reference of its own; the VMA becomes VM_MIXEDMAP). EFAULT for a null page or an address
    /// outside the VMA or unaligned; ENOMEM when a page table cannot be allocated; EBUSY when something
    /// is mapped there already.</summary>
    public static Errno VmInsertPage(Vma vma, ulong addr, Page page) => Memory.VmInsertPage(vma, addr, page);

    /// <summary>make_device_exclusive: the page at <paramref name="addr"/> faulted in writable, then
    /// its PTE replaced by a device-exclusive entry; returns the page locked and referenced (the caller
    /// unlocks and puts it). Caller holds mmap_lock for read. EOPNOTSUPP for a page that is not anonymous
    /// (shmem, hugetlb); GUP's errno (EFAULT) when the page cannot be faulted in writable; EBUSY when it
    /// kept racing with other changes to the PTE.</summary>
    public static Errno MakeDeviceExclusive(MmStruct mm, ulong addr, object? owner, out Page page) =>
        DeviceExclusive.MakeDeviceExclusive(mm, addr, owner, out page);

    // --- the kernel log and counters ------------------------------------------------------------

    /// <summary>printk.</summary>
    public static void Printk(KernelState kernel, string line)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        kernel.Dmesg.Log(line);
    }

    /// <summary>count_vm_event.</summary>
    public static void CountVmEvent(KernelState kernel, VmStatItem item)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        kernel.VmStat.Inc(item);
    }

    /// <summary>BUG(): an oops in the calling driver.</summary>
    public static Exception Bug(string message) => KernelExceptions.Oops(message);
}
