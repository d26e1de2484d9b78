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
        Memmap = new Memmap(this, Arch.SectionSizeBits, config.PhysicalAddressBits, Arch.MaxPhysmemBits, vmemmapEnd);
        Memmap.AddRange(false, 0, ramPages, ZoneType.Normal, null);
        Buddy = new Buddy(Memmap, ramPages);
        Swapops = new Swapops(Arch, config.DevicePrivateDesign, Memmap);
        Resources = ResourceTree.Boot(config.PhysicalAddressBits, (Arch.VmemmapCoversOnlyLinearMap ? LinearMapEnd : 1UL << config.PhysicalAddressBits) - 1,
            config.RamBytes, config.PciWindows);
        var zero = Buddy.Alloc(0, compound: false);
        zero.Desc.Flags |= (uint)(PageFlags.Zero | PageFlags.Reserved);
        ZeroPfn = zero.ToPfn();
        Hugetlb = new HugetlbPool(this, config.HugetlbPages);
        if (config.DevicePrivateDesign == DevicePrivateDesign.DeviceAddressSpace)
            DevicePrivateSpace = new DevicePrivateSpace(1UL << (Arch.MaxPhysmemBits - Arch.PageShift));
        Pci = PciTree.Build(config.PciTopology, 4);
    }

    /// <summary>The PCI tree the dmirror units sit in.</summary>
    public PciTree Pci { get; } = null!;

    /// <summary>The redesign's device-private address space; null in today's design.</summary>
    public DevicePrivateSpace? DevicePrivateSpace { get; }
    /// <summary>ZONE_DEVICE pagemaps over physical ranges (pgmap_array).</summary>
    public List<DevPagemap> PhysPgmaps { get; } = [];
    public Lock PgmapLock { get; } = new();

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

    /// <summary>free_zone_device_folio: the pagemap's folio_free gets the folio back; its pgmap
    /// references are dropped, and its refcount stays 0 until zone_device_folio_init hands it out again.</summary>
    public void FreeZoneDeviceFolio(Folio folio)
    {
        var pgmap = folio.Pgmap ?? ThrowHelper.KernelBug<DevPagemap>($"freeing ZONE_DEVICE {folio} without a pgmap");
        int nr = folio.NrPages;
        if (folio.IsAnon)
            for (int i = 0; i < nr; i++)
                folio.Page(i).Desc.Flags &= ~(uint)PageFlags.AnonExclusive;
        folio.ClearFlag(PageFlags.Anon | PageFlags.SwapBacked | PageFlags.Dirty);
        folio.Mapping = 0;
        switch (pgmap.Type)
        {
            case MemoryType.DevicePrivate or MemoryType.DeviceCoherent:
                pgmap.Ops.FolioFree?.Invoke(folio);
                pgmap.PutRefs(nr);
                break;
            case MemoryType.Generic:
                folio.Head.RefCount = 1;
                break;
            default:
                pgmap.Ops.FolioFree?.Invoke(folio);
                break;
        }
    }
}
