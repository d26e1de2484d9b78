namespace HmmSim;

/// <summary>struct dev_pagemap_ops. Null members are callbacks the driver does not provide.</summary>
public sealed class DevPagemapOps
{
    /// <summary>folio_free: the last reference to a device folio was dropped.</summary>
    public Action<Folio>? FolioFree { get; init; }
    /// <summary>migrate_to_ram: a CPU fault on a device-private entry (vmf->page is locked).</summary>
    public Func<Page, VmFault, VmFaultResult>? MigrateToRam { get; init; }
    /// <summary>folio_split: the core split a device folio; the driver splits its own tracking.</summary>
    public Action<Folio, Folio>? FolioSplit { get; init; }
}

/// <summary>struct dev_pagemap: one registration of ZONE_DEVICE memory.</summary>
public sealed class DevPagemap
{
    public DevPagemap(MemoryType type, object? owner, DevPagemapOps ops, int vmemmapShift = 0)
    {
        Type = type;
        Owner = owner;
        Ops = ops;
        VmemmapShift = vmemmapShift;
    }

    public MemoryType Type { get; }
    /// <summary>pgmap->owner: hmm_range_fault and migrate_vma report or select device-private
    /// pages only for a caller passing the same owner.</summary>
    public object? Owner { get; }
    public DevPagemapOps Ops { get; }
    /// <summary>pgmap->vmemmap_shift: the order of the folios memmap_init_zone_device builds.</summary>
    public int VmemmapShift { get; }
    /// <summary>The registered ranges: physical (PFN numbers) or, in the redesign, device-private offsets.</summary>
    public List<(ulong First, ulong Pages)> Ranges { get; } = [];
    /// <summary>Set when the pages live in the device-private address space (the redesign).</summary>
    public bool InDevicePrivateSpace { get; internal set; }
    /// <summary>The percpu_ref the kernel holds per live page: memunmap_pages waits for zero.</summary>
    internal long LiveReferences;
}
