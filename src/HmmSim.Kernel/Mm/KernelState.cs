namespace HmmSim.Kernel;

/// <summary>The kernel's globals, one set per booted machine: a plain holder of each subsystem's
/// state (the memmap, the buddy, iomem_resource, the zero pages, the PCI tree …), what the mm code
/// reaches for where the kernel uses a global. Behaviour lives in the file of its mechanism. A
/// driver holds it as an opaque handle to the kernel it is loaded into.</summary>
public sealed partial class KernelState
{
    internal KernelState(KernelConfig config)
    {
        Config = config;
        Arch = Arch.For(config.Architecture);
        ulong ramPages = config.RamBytes >> Arch.PageShift;
        ulong vmemmapEnd = Arch.VmemmapCoversOnlyLinearMap ? LinearMapEnd >> Arch.PageShift : 1UL << (config.PhysicalAddressBits - Arch.PageShift);
        var identity = DevicePrivateIdentityLayout.For(Arch);
        bool perPagemap = config.Variants.Identity == DevicePrivateIdentity.PerPagemapSpace;
        Memmap = new Memmap(this, Arch.SectionSizeBits, config.PhysicalAddressBits, Arch.MaxPhysmemBits, vmemmapEnd,
            perPagemap ? identity.SpaceShift : 0);
        Memmap.AddRange(false, 0, ramPages, ZoneType.Normal, null);
        Buddy = new Buddy(Memmap, ramPages);
        Swapops = new Swapops(Arch, config.DevicePrivateDesign, Memmap, config.Variants.SoftleafMigration);
        Resources = ResourceTree.Boot(config.PhysicalAddressBits, (Arch.VmemmapCoversOnlyLinearMap ? LinearMapEnd : 1UL << config.PhysicalAddressBits) - 1,
            config.RamBytes, config.PciWindows);
        var zero = Buddy.Alloc(0, compound: false);
        zero.Desc.Flags |= (uint)(PageFlags.Zero | PageFlags.Reserved);
        ZeroPfn = zero.ToPfn();
        Hugetlb = new HugetlbPool(this, config.HugetlbPages);
        if (config.DevicePrivateDesign == DevicePrivateDesign.DeviceAddressSpace)
            DevicePrivateSpace = perPagemap
                ? new DevicePrivateSpace(1UL << identity.IndexBits, identity.SpaceShift, identity.SpaceBits)
                : new DevicePrivateSpace(1UL << (Arch.MaxPhysmemBits - Arch.PageShift));
        if (config.Variants.DevicePageMetadata == DevicePageMetadata.Minimal)
        {
            // The descriptor's field check runs on every device-private access of this kernel.
            Census = new DevicePageCensus { AllowedFields = DevicePrivateDescriptor.FieldMask };
            Interlocked.Increment(ref DevicePageCensus.Active);
        }
        Pci = PciTree.Build(config.PciTopology, 4);
        Pci.AssignBars(Resources, DevicePrivateBars, P2pBarSize, Dmesg.Log);
    }

    /// <summary>The size of the BAR each of the first two endpoints exposes its memory through.</summary>
    internal const ulong P2pBarSize = 1UL << 30;
    internal const int DevicePrivateBars = 2;

    /// <summary>The PCI tree the dmirror units sit in.</summary>
    internal PciTree Pci { get; } = null!;

    /// <summary>The redesign's device-private address space; null in today's design.</summary>
    internal DevicePrivateSpace? DevicePrivateSpace { get; }
    /// <summary>ZONE_DEVICE pagemaps over physical ranges (pgmap_array).</summary>
    internal List<DevPagemap> PhysPgmaps { get; } = [];
    internal Lock PgmapLock { get; } = new();

    /// <summary>The shared zero page (empty_zero_page): mapped read-only by anonymous read faults.</summary>
    internal Pfn ZeroPfn { get; }
    internal long HugeZeroPfnValue = -1;   // written once by HugeMemory.MmGetHugeZeroFolio
    /// <summary>The huge zero folio's PFN, or an impossible PFN before the first huge read fault made it.</summary>
    internal Pfn HugeZeroPfn => new((ulong)Interlocked.Read(ref HugeZeroPfnValue));
    internal HugetlbPool Hugetlb { get; }


    internal KernelConfig Config { get; }
    /// <summary>The device-page census (recording on demand) and, under DevicePageMetadata=Minimal,
    /// the descriptor's field check; null until first asked for on a default kernel.</summary>
    internal DevicePageCensus? Census { get; }

    /// <summary>Machine teardown: a Minimal kernel's field check stops counting toward the static
    /// switch, so other kernels' hooks go back to a single branch.</summary>
    internal void ReleaseCensus()
    {
        if (Census?.AllowedFields is not null && Interlocked.Exchange(ref _censusReleased, 1) == 0)
            Interlocked.Decrement(ref DevicePageCensus.Active);
    }

    private int _censusReleased;
    internal Arch Arch { get; }
    /// <summary>iomem_resource: the physical address space.</summary>
    internal ResourceTree Resources { get; }
    internal Memmap Memmap { get; }
    internal Buddy Buddy { get; }
    /// <summary>Swap-entry and softleaf helpers with the configured design's type numbering.</summary>
    internal Swapops Swapops { get; }
    internal VmStat VmStat { get; } = new();
    internal Dmesg Dmesg { get; } = new();
    /// <summary>The trace buffer while tracing is on (tracing_on), else null: every tracepoint is a
    /// null check when tracing is off, and formats its fields only when it is on.</summary>
    internal TraceBuffer? Trace { get; set; }

    /// <summary>PHYSMEM_END on arm64: the end of what the linear map (and so vmemmap) can cover,
    /// half of the 48-bit kernel VA space. x86-64's direct map covers all of MAX_PHYSMEM_BITS.</summary>
    internal ulong LinearMapEnd => Arch.Kind == Architecture.Arm64
        ? 1UL << (Arch.MaxPhysmemBits - 1)
        : 1UL << Config.PhysicalAddressBits;

    /// <summary>System RAM pages drivers hold for the life of their module (e.g. dmirror's backing pages).</summary>
    internal long PagesHeldByDrivers;

}
