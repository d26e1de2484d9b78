namespace HmmSim.Kernel;

/// <summary>include/linux/swap.h type numbering and include/linux/swapops.h constructors, for
/// one arch and one device-private design (all of CONFIG_DEVICE_PRIVATE, CONFIG_MIGRATION,
/// CONFIG_MEMORY_FAILURE and PTE markers on). The softleaf helpers of leafops.h are the other
/// half of this class (Leafops.cs).
/// In the legacy design (<see cref="DevicePrivateDesign.PhysicalAddressSpace"/>) there are three
/// device types and device-private entries carry a PFN. In the redesign
/// (<see cref="DevicePrivateDesign.DeviceAddressSpace"/>) there are six: the three
/// SWP_MIGRATION_DEVICE_* types are migration entries whose offset is a device-private index,
/// and device-private entries carry a device-private index too. No method here turns such an
/// offset into a <see cref="Pfn"/>.</summary>
internal sealed partial class Swapops
{
    public const int MaxSwapfilesShift = SwapEntry.MaxSwapfilesShift;   // 5
    public const int SwpMigrationNum = 3;
    public const int SwpHwpoisonNum = 1;
    public const int SwpPteMarkerNum = 1;

    // PTE markers (swp_entry(SWP_PTE_MARKER, marker)).
    public const ulong PteMarkerUffdWp = 1UL << 0;
    public const ulong PteMarkerPoisoned = 1UL << 1;
    public const ulong PteMarkerGuard = 1UL << 2;
    public const ulong PteMarkerMask = (1UL << 3) - 1;

    private const uint NoSuchType = uint.MaxValue;
    private readonly uint _swpMigrationDeviceRead = NoSuchType;
    private readonly uint _swpMigrationDeviceReadExclusive = NoSuchType;
    private readonly uint _swpMigrationDeviceWrite = NoSuchType;

    public Swapops(Arch arch, DevicePrivateDesign design, Memmap memmap, SoftleafMigrationRule migrationRule = SoftleafMigrationRule.Consistent)
    {
        Arch = arch;
        Design = design;
        Memmap = memmap;
        MigrationRule = migrationRule;
        SwpDeviceNum = design == DevicePrivateDesign.DeviceAddressSpace ? 6 : 3;
        MaxSwapfiles = (1 << MaxSwapfilesShift) - SwpDeviceNum - SwpMigrationNum - SwpHwpoisonNum - SwpPteMarkerNum;
        uint max = (uint)MaxSwapfiles;
        SwpHwpoison = max;
        SwpMigrationRead = max + SwpHwpoisonNum;
        SwpMigrationReadExclusive = max + SwpHwpoisonNum + 1;
        SwpMigrationWrite = max + SwpHwpoisonNum + 2;
        uint device = max + SwpHwpoisonNum + SwpMigrationNum;
        SwpDeviceWrite = device;
        SwpDeviceRead = device + 1;
        SwpDeviceExclusive = device + 2;
        if (HasMigrationDeviceTypes)
        {
            _swpMigrationDeviceRead = device + 3;
            _swpMigrationDeviceReadExclusive = device + 4;
            _swpMigrationDeviceWrite = device + 5;
        }
        SwpPteMarker = device + (uint)SwpDeviceNum;

        SwpPfnBits = arch.SwpPfnBits;
        SwpPfnMask = (1UL << SwpPfnBits) - 1;
        SwpMigYoungBit = SwpPfnBits;
        SwpMigDirtyBit = SwpPfnBits + 1;
        SwpMigTotalBits = SwpPfnBits + 2;
        SwpMigYoung = 1UL << SwpMigYoungBit;
        SwpMigDirty = 1UL << SwpMigDirtyBit;
        // swapfile_init: swap_migration_ad_supported.
        MigrationEntrySupportsAd = arch.ArchMaxSwapfileSize >= 1UL << SwpMigTotalBits;
        // (space #, space index): the space id sits above the young and dirty bits.
        DevicePrivateIdMask = SwpPfnMask;
        if (memmap.Kernel.Config.Variants.Identity == DevicePrivateIdentity.PerPagemapSpace)
        {
            var layout = DevicePrivateIdentityLayout.For(arch);
            DevicePrivateIdMask |= ((1UL << layout.SpaceBits) - 1) << layout.SpaceShift;
        }
    }

    /// <summary>The bits of an entry's offset that name a device-private page: SWP_PFN_BITS, plus the
    /// space id under the (space #, space index) proposal.</summary>
    public ulong DevicePrivateIdMask { get; }

    public Arch Arch { get; }
    public DevicePrivateDesign Design { get; }
    public Memmap Memmap { get; }
    /// <summary>Which softleaf_is_migration*() predicates accept device-private migration entries
    /// (<see cref="KernelVariants.SoftleafMigration"/>).</summary>
    public SoftleafMigrationRule MigrationRule { get; }
    /// <summary>Whether device-private offsets are indices of their own space (the redesign).</summary>
    public bool HasMigrationDeviceTypes => Design == DevicePrivateDesign.DeviceAddressSpace;

    // --- type numbers (swap.h) -------------------------------------------------------------
    public int SwpDeviceNum { get; }
    public int MaxSwapfiles { get; }
    public uint SwpHwpoison { get; }
    public uint SwpMigrationRead { get; }
    public uint SwpMigrationReadExclusive { get; }
    public uint SwpMigrationWrite { get; }
    public uint SwpDeviceWrite { get; }
    public uint SwpDeviceRead { get; }
    public uint SwpDeviceExclusive { get; }
    /// <summary>SWP_MIGRATION_DEVICE_READ: only the redesign has it; asking in the legacy design
    /// throws <see cref="NotSupportedException"/> (the macro does not exist there).</summary>
    public uint SwpMigrationDeviceRead => Require(_swpMigrationDeviceRead);
    public uint SwpMigrationDeviceReadExclusive => Require(_swpMigrationDeviceReadExclusive);
    public uint SwpMigrationDeviceWrite => Require(_swpMigrationDeviceWrite);
    public uint SwpPteMarker { get; }

    private uint Require(uint type) => HasMigrationDeviceTypes
        ? type
        : throw new NotSupportedException("SWP_MIGRATION_DEVICE_* exist only in the device-address-space design");

    // --- PFN field and migration A/D bits ---------------------------------------------------
    public int SwpPfnBits { get; }
    public ulong SwpPfnMask { get; }
    public int SwpMigYoungBit { get; }
    public int SwpMigDirtyBit { get; }
    public int SwpMigTotalBits { get; }
    public ulong SwpMigYoung { get; }
    public ulong SwpMigDirty { get; }
    /// <summary>migration_entry_supports_ad: arch_max_swapfile_size() &gt;= 1 &lt;&lt; SWP_MIG_TOTAL_BITS.</summary>
    public bool MigrationEntrySupportsAd { get; }

    // --- constructors ------------------------------------------------------------------------
    public static SwapEntry SwpEntry(uint type, ulong offset) => SwapEntry.Make(type, offset);

    public SwapEntry MakeReadableMigrationEntry(ulong offset) => SwpEntry(SwpMigrationRead, offset);
    public SwapEntry MakeReadableExclusiveMigrationEntry(ulong offset) => SwpEntry(SwpMigrationReadExclusive, offset);
    public SwapEntry MakeWritableMigrationEntry(ulong offset) => SwpEntry(SwpMigrationWrite, offset);

    public SwapEntry MakeReadableDevicePrivateEntry(ulong offset) => SwpEntry(SwpDeviceRead, offset);
    public SwapEntry MakeWritableDevicePrivateEntry(ulong offset) => SwpEntry(SwpDeviceWrite, offset);
    public SwapEntry MakeDeviceExclusiveEntry(ulong offset) => SwpEntry(SwpDeviceExclusive, offset);

    public SwapEntry MakeReadableMigrationDevicePrivateEntry(ulong offset) => SwpEntry(SwpMigrationDeviceRead, offset);
    public SwapEntry MakeReadableExclusiveMigrationDevicePrivateEntry(ulong offset) => SwpEntry(SwpMigrationDeviceReadExclusive, offset);
    public SwapEntry MakeWritableMigrationDevicePrivateEntry(ulong offset) => SwpEntry(SwpMigrationDeviceWrite, offset);

    /// <summary>The offset a page contributes to an entry: its device-private index in the redesign
    /// for a device-private page, else its PFN. An index that does not fit the PFN field would be
    /// silently truncated by the kernel; here it is a BUG.</summary>
    private ulong PageOffset(Page page, ulong flags)
    {
        bool indexed = IsDevicePrivateIndexed(page);
        ulong offset = indexed ? page.ToDevicePrivateIndex().Value : page.ToPfn().Value;
        if ((offset & ~(indexed ? DevicePrivateIdMask : SwpPfnMask)) != 0)
            ThrowHelper.KernelBug($"{page}: offset 0x{offset:x} does not fit SWP_PFN_BITS ({SwpPfnBits})");
        return offset | flags;
    }

    private bool IsDevicePrivateIndexed(Page page) => HasMigrationDeviceTypes && page.IsDevicePrivate;

    public SwapEntry MakeReadableMigrationEntryFromPage(Page page, ulong flags = 0) => IsDevicePrivateIndexed(page)
        ? MakeReadableMigrationDevicePrivateEntry(PageOffset(page, flags))
        : MakeReadableMigrationEntry(PageOffset(page, flags));

    public SwapEntry MakeReadableExclusiveMigrationEntryFromPage(Page page, ulong flags = 0) => IsDevicePrivateIndexed(page)
        ? MakeReadableExclusiveMigrationDevicePrivateEntry(PageOffset(page, flags))
        : MakeReadableExclusiveMigrationEntry(PageOffset(page, flags));

    public SwapEntry MakeWritableMigrationEntryFromPage(Page page, ulong flags = 0) => IsDevicePrivateIndexed(page)
        ? MakeWritableMigrationDevicePrivateEntry(PageOffset(page, flags))
        : MakeWritableMigrationEntry(PageOffset(page, flags));

    public SwapEntry MakeReadableDevicePrivateEntryFromPage(Page page, ulong flags = 0) =>
        MakeReadableDevicePrivateEntry(PageOffset(RequireDevicePrivate(page), flags));

    public SwapEntry MakeWritableDevicePrivateEntryFromPage(Page page, ulong flags = 0) =>
        MakeWritableDevicePrivateEntry(PageOffset(RequireDevicePrivate(page), flags));

    /// <summary>make_device_exclusive_entry takes a PFN: device-exclusive pages are ordinary RAM.</summary>
    public SwapEntry MakeDeviceExclusiveEntryFromPage(Page page) => MakeDeviceExclusiveEntry(page.ToPfn().Value);

    private static Page RequireDevicePrivate(Page page) => page.IsDevicePrivate
        ? page
        : ThrowHelper.KernelBug<Page>($"device-private entry for {page}, which is not a device-private page");

    /// <summary>make_hwpoison_entry.</summary>
    public SwapEntry MakeHwpoisonEntry(Page page) => SwpEntry(SwpHwpoison, page.ToPfn().Value);

    /// <summary>make_pte_marker_entry: a marker must be non-zero and within PTE_MARKER_MASK.</summary>
    public SwapEntry MakePteMarker(ulong marker)
    {
        if (marker == 0 || (marker & ~PteMarkerMask) != 0)
            ThrowHelper.KernelBug($"bad PTE marker 0x{marker:x}");
        return SwpEntry(SwpPteMarker, marker);
    }

    // --- migration A/D bits ------------------------------------------------------------------
    public SwapEntry MakeMigrationEntryYoung(SwapEntry entry) =>
        MigrationEntrySupportsAd ? SwpEntry(entry.Type, entry.Offset | SwpMigYoung) : entry;

    public SwapEntry MakeMigrationEntryDirty(SwapEntry entry) =>
        MigrationEntrySupportsAd ? SwpEntry(entry.Type, entry.Offset | SwpMigDirty) : entry;

    public bool IsMigrationEntryYoung(SwapEntry entry) => MigrationEntrySupportsAd && (entry.Offset & SwpMigYoung) != 0;
    public bool IsMigrationEntryDirty(SwapEntry entry) => MigrationEntrySupportsAd && (entry.Offset & SwpMigDirty) != 0;

    // --- legacy swapops predicates, kept for callers written against them --------------------
    /// <summary>is_device_private_migration_entry (v1 of the series; v3 kept only the softleaf form).</summary>
    public bool IsDevicePrivateMigrationEntry(SwapEntry entry) => SoftleafIsMigrationDevicePrivate(entry);

    /// <summary>The page an entry carrying a PFN or a device-private index refers to
    /// (pfn_swap_entry_to_page / softleaf_to_page). Device-private and SWP_MIGRATION_DEVICE_*
    /// entries of the redesign go through device_private_offset_to_page, the rest through
    /// pfn_to_page. An entry with neither is a BUG.</summary>
    public Page PfnSwapEntryToPage(SwapEntry entry)
    {
        if (!SoftleafHasPfn(entry))
            ThrowHelper.KernelBug($"{entry} carries neither a PFN nor a device-private offset");
        return CarriesDevicePrivateIndex(entry)
            ? Memmap.DevicePrivateOffsetToPage(new DevicePrivateIndex(entry.Offset & DevicePrivateIdMask))
            : Memmap.PfnToPage(new Pfn(entry.Offset & SwpPfnMask));
    }

    /// <summary><see cref="PfnSwapEntryToPage"/> for an entry read without the page-table lock: false
    /// when the page it names has no memmap any more (the migration ended and its pagemap went away).</summary>
    public bool TryPfnSwapEntryToPage(SwapEntry entry, out Page page)
    {
        page = default;
        if (!SoftleafHasPfn(entry))
            return false;
        bool dp = CarriesDevicePrivateIndex(entry);
        return Memmap.TryPageAt(dp, entry.Offset & (dp ? DevicePrivateIdMask : SwpPfnMask), out page);
    }

    /// <summary>Whether the entry's offset field is a device-private index (redesign only).</summary>
    public bool CarriesDevicePrivateIndex(SwapEntry entry) =>
        HasMigrationDeviceTypes && (SoftleafIsDevicePrivate(entry) || SoftleafIsMigrationDevicePrivate(entry));
}
