namespace HmmSim.Kernel;

/// <summary>struct dev_pagemap_ops. Null members are callbacks the driver does not provide.</summary>
public sealed class DevPagemapOps
{
    /// <summary>folio_free: the last reference to a device folio was dropped.</summary>
    public Action<Folio>? FolioFree { get; init; }
    /// <summary>migrate_to_ram: a CPU fault on a device-private entry (vmf->page is locked).</summary>
    public Func<VmFault, VmFaultResult>? MigrateToRam { get; init; }
    /// <summary>folio_split: the core split a large device folio; called with the head and each new folio.</summary>
    public Action<Folio, Folio>? FolioSplit { get; init; }
    /// <summary>get_dma_pfn_for_device (the P2P series): a DMA-able alias of a device-private page, the
    /// PFN of a PCI P2PDMA page in the owner's BAR; an errno when the page has none.</summary>
    public Func<Page, (Errno Error, Pfn DmaPfn)>? GetDmaPfnForDevice { get; init; }
}

/// <summary>struct dev_pagemap: one registration of ZONE_DEVICE memory. In the redesign a
/// DEVICE_PRIVATE pagemap's range is in the device-private address space (an offset range in
/// pages); otherwise it is a physical range.</summary>
public sealed class DevPagemap
{
    private readonly object _lock = new();   // Monitor: memunmap waits on it for the last page
    private long _refs;
    private bool _killed;

    /// <summary>A pagemap as a driver fills struct dev_pagemap before memremap_pages or
    /// memremap_device_private_pagemap: its type, owner cookie, ops and folio order
    /// (<paramref name="vmemmapShift"/>, 0 for order-0 pages). The range is set at registration.</summary>
    public DevPagemap(MemoryType type, object? owner, DevPagemapOps ops, int vmemmapShift = 0)
    {
        Type = type;
        Owner = owner;
        Ops = ops;
        VmemmapShift = vmemmapShift;
    }

    /// <summary>pgmap->type: what kind of ZONE_DEVICE memory this is.</summary>
    public MemoryType Type { get; }
    /// <summary>pgmap->owner: hmm_range_fault and migrate_vma report or select device-private
    /// pages only for a caller passing the same owner.</summary>
    public object? Owner { get; }
    /// <summary>pgmap->ops: the driver's callbacks.</summary>
    public DevPagemapOps Ops { get; }
    /// <summary>pgmap->vmemmap_shift: the order of the folios memmap_init_zone_device lays out.</summary>
    public int VmemmapShift { get; }
    /// <summary>pgmap->range: first page number (PFN, or device-private offset in the redesign) and page count.</summary>
    public ulong First { get; internal set; }
    /// <summary>The number of base pages in the pagemap's range (range_len / PAGE_SIZE).</summary>
    public ulong NrPages { get; internal set; }
    /// <summary>The range is in the device-private address space (the redesign), not physical.</summary>
    public bool InDevicePrivateSpace { get; internal set; }
    /// <summary>The /proc/iomem region reserved for the pagemap (today's design's request_free_mem_region).</summary>
    internal Resource? Region { get; set; }
    /// <summary>Driver data (the chunk a dmirror pagemap belongs to, say).</summary>
    public object? DriverData { get; set; }

    internal bool Contains(ulong number) => number - First < NrPages;

    /// <summary>The percpu_ref: one reference per page handed out by zone_device_page_init.</summary>
    internal long References => Interlocked.Read(ref _refs);
    internal bool Killed => Volatile.Read(ref _killed);

    /// <summary>percpu_ref_tryget_many: fails once memunmap has killed the reference.</summary>
    internal bool TryGetRefs(long n)
    {
        if (Volatile.Read(ref _killed))
            return false;
        Interlocked.Add(ref _refs, n);
        if (!Volatile.Read(ref _killed))
            return true;
        PutRefs(n);
        return false;
    }

    /// <summary>percpu_ref_put_many: the last put after the kill wakes memunmap.</summary>
    internal void PutRefs(long n)
    {
        long v = Interlocked.Add(ref _refs, -n);
        if (v < 0)
            ThrowHelper.KernelBug($"dev_pagemap ({Type}) reference count went negative");
        if (v == 0 && Volatile.Read(ref _killed))
        {
            lock (_lock)
                Monitor.PulseAll(_lock);
        }
    }

    /// <summary>percpu_ref_kill + wait_for_completion(&amp;pgmap->done): blocks until every page is freed.</summary>
    internal void KillAndWait()
    {
        Volatile.Write(ref _killed, true);
        lock (_lock)
        {
            // The kernel would wait forever for a leaked page; the model gives up after a minute of
            // no progress and reports the leak, so a test fails instead of hanging.
            long last = References;
            while (References != 0)
            {
                if (!Monitor.Wait(_lock, TimeSpan.FromSeconds(60)) && References == last)
                    ThrowHelper.KernelBug($"memunmap of {this}: {References} page references were never dropped (a leaked device page)");
                last = References;
            }
        }
    }

    /// <summary>"dev_pagemap TYPE [pfn|dpi first+count]", for logs and assertion messages.</summary>
    public override string ToString() => $"dev_pagemap {Type} [{(InDevicePrivateSpace ? "dpi" : "pfn")} 0x{First:x}+0x{NrPages:x}]";
}
