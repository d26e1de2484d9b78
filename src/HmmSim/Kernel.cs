namespace HmmSim;

/// <summary>The modelled kernel: one per <see cref="Machine"/>. It owns the memory subsystems and
/// is what the mm code reaches for where the kernel uses globals (the zero page, the buddy, the
/// swap-type numbering of the configured design).</summary>
internal sealed partial class Kernel
{
    public Kernel(MachineConfig config)
    {
        Config = config;
        Arch = Arch.For(config.Architecture);
        ulong ramPages = config.RamBytes >> Arch.PageShift;
        ulong vmemmapEnd = Arch.VmemmapCoversOnlyLinearMap ? LinearMapEnd >> Arch.PageShift : 1UL << (config.PhysicalAddressBits - Arch.PageShift);
        Memmap = new Memmap(this, Arch.SectionSizeBits, config.PhysicalAddressBits, vmemmapEnd);
        Memmap.AddRange(false, 0, ramPages, ZoneType.Normal, null);
        Buddy = new Buddy(Memmap, ramPages);
        Swapops = new Swapops(Arch, config.DevicePrivateDesign, Memmap);
        Resources = ResourceTree.Boot(config.PhysicalAddressBits, (Arch.VmemmapCoversOnlyLinearMap ? LinearMapEnd : 1UL << config.PhysicalAddressBits) - 1,
            config.RamBytes, config.PciWindows);
        var zero = Buddy.Alloc(0, compound: false);
        zero.Desc.Flags |= (uint)(PageFlags.Zero | PageFlags.Reserved);
        ZeroPfn = zero.ToPfn();
        Hugetlb = new HugetlbPool(this, config.HugetlbPages);
    }

    /// <summary>The shared zero page (empty_zero_page): mapped read-only by anonymous read faults.</summary>
    public Pfn ZeroPfn { get; }
    private long _hugeZeroPfn = -1;
    /// <summary>The huge zero folio's PFN, or an impossible PFN before the first huge read fault made it.</summary>
    public Pfn HugeZeroPfn => new((ulong)Interlocked.Read(ref _hugeZeroPfn));
    public HugetlbPool Hugetlb { get; }

    /// <summary>mm_get_huge_zero_folio: made on first use and kept for the life of the machine.</summary>
    public Pfn GetHugeZeroPfn()
    {
        if (Interlocked.Read(ref _hugeZeroPfn) is var v and >= 0)
            return new Pfn((ulong)v);
        lock (Memmap)
        {
            if (_hugeZeroPfn >= 0)
                return new Pfn((ulong)_hugeZeroPfn);
            var page = Buddy.Alloc(Arch.HpagePmdOrder, compound: true);
            if (page.IsNull)
                ThrowHelper.KernelBug("no memory for the huge zero folio");
            page.Desc.Flags |= (uint)(PageFlags.Zero | PageFlags.Reserved);
            VmStat.Inc(VmStatItem.ThpZeroPageAlloc);
            Interlocked.Exchange(ref _hugeZeroPfn, (long)page.ToPfn().Value);
            return page.ToPfn();
        }
    }

    public MachineConfig Config { get; }
    public Arch Arch { get; }
    /// <summary>iomem_resource: the physical address space.</summary>
    public ResourceTree Resources { get; }
    public Memmap Memmap { get; }
    public Buddy Buddy { get; }
    /// <summary>Swap-entry and softleaf helpers with the configured design's type numbering.</summary>
    public Swapops Swapops { get; }
    public VmStat VmStat { get; } = new();
    public Dmesg Dmesg { get; } = new();

    /// <summary>PHYSMEM_END on arm64: the end of what the linear map (and so vmemmap) can cover,
    /// half of the 48-bit kernel VA space. x86-64's direct map covers all of MAX_PHYSMEM_BITS.</summary>
    public ulong LinearMapEnd => Arch.Kind == Architecture.Arm64
        ? 1UL << (Arch.MaxPhysmemBits - 1)
        : 1UL << Config.PhysicalAddressBits;

    /// <summary>System RAM pages drivers hold for the life of their module (e.g. dmirror's backing pages).</summary>
    public long PagesHeldByDrivers;

    /// <summary>free_zone_device_folio: the pagemap's folio_free gets the folio back.</summary>
    public void FreeZoneDeviceFolio(Folio folio)
    {
        var pgmap = folio.Pgmap ?? ThrowHelper.KernelBug<DevPagemap>($"freeing ZONE_DEVICE {folio} without a pgmap");
        folio.Head.Flags &= (uint)(PageFlags.Head | PageFlags.HighByteMask);
        folio.Mapping = 0;
        pgmap.Ops.FolioFree?.Invoke(folio);
        Interlocked.Decrement(ref pgmap.LiveReferences);
    }
}
