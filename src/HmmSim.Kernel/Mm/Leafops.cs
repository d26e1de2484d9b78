namespace HmmSim.Kernel;

/// <summary>enum softleaf_type (include/linux/leafops.h) as the device-private series extends it
/// (v3+ names): a classification of a softleaf_t, not an encoding.</summary>
internal enum SoftleafType
{
    None,
    Swap,
    MigrationRead,
    MigrationReadExclusive,
    MigrationWrite,
    DevicePrivateRead,
    DevicePrivateWrite,
    DeviceExclusive,
    MigrationDevicePrivateRead,
    MigrationDevicePrivateReadExclusive,
    MigrationDevicePrivateWrite,
    Hwpoison,
    Marker,
}

/// <summary>The softleaf helpers of leafops.h. softleaf_t is <see cref="SwapEntry"/>. In the
/// redesign every migration predicate also accepts its device-private specialisation ("is-a"),
/// and only the *DevicePrivate* predicates tell the two apart (seed 001).</summary>
internal sealed partial class Swapops
{
    /// <summary>softleaf_mk_none: the all-zero entry (before Lorenzo's PTE_MARKER_SOFTLEAF_NONE follow-up).</summary>
    public static SwapEntry SoftleafMkNone() => default;

    /// <summary>softleaf_from_pte: a present or none PTE gives the none leaf; otherwise the software
    /// bits are stripped and the entry decoded.</summary>
    public SwapEntry SoftleafFromPte(ulong pte) =>
        Arch.PteNone(pte) || Arch.PtePresent(pte) ? SoftleafMkNone() : Arch.PteToSwpEntry(pte);

    /// <summary>softleaf_from_pmd (with ARCH_ENABLE_THP_MIGRATION).</summary>
    public SwapEntry SoftleafFromPmd(ulong pmd) =>
        pmd == 0 || Arch.PmdPresent(pmd) ? SoftleafMkNone() : Arch.PmdToSwpEntry(pmd);

    /// <summary>softleaf_to_pte.</summary>
    public ulong SoftleafToPte(SwapEntry entry) => Arch.SwpEntryToPte(entry);
    public ulong SoftleafToPmd(SwapEntry entry) => Arch.SwpEntryToPmd(entry);

    /// <summary>softleaf_type. An unknown type number would be a VM_WARN and NONE in the kernel;
    /// with every option on all 32 type numbers are assigned, so that cannot happen here.</summary>
    public SoftleafType SoftleafType(SwapEntry entry)
    {
        if (entry.IsNone)
            return HmmSim.Kernel.SoftleafType.None;
        uint type = entry.Type;
        if (type < (uint)MaxSwapfiles)
            return HmmSim.Kernel.SoftleafType.Swap;
        if (type == SwpMigrationRead) return HmmSim.Kernel.SoftleafType.MigrationRead;
        if (type == SwpMigrationReadExclusive) return HmmSim.Kernel.SoftleafType.MigrationReadExclusive;
        if (type == SwpMigrationWrite) return HmmSim.Kernel.SoftleafType.MigrationWrite;
        if (type == SwpDeviceWrite) return HmmSim.Kernel.SoftleafType.DevicePrivateWrite;
        if (type == SwpDeviceRead) return HmmSim.Kernel.SoftleafType.DevicePrivateRead;
        if (type == SwpDeviceExclusive) return HmmSim.Kernel.SoftleafType.DeviceExclusive;
        if (type == _swpMigrationDeviceRead) return HmmSim.Kernel.SoftleafType.MigrationDevicePrivateRead;
        if (type == _swpMigrationDeviceReadExclusive) return HmmSim.Kernel.SoftleafType.MigrationDevicePrivateReadExclusive;
        if (type == _swpMigrationDeviceWrite) return HmmSim.Kernel.SoftleafType.MigrationDevicePrivateWrite;
        if (type == SwpHwpoison) return HmmSim.Kernel.SoftleafType.Hwpoison;
        if (type == SwpPteMarker) return HmmSim.Kernel.SoftleafType.Marker;
        return ThrowHelper.KernelBug<SoftleafType>($"{entry}: unknown swap type");
    }

    public static bool SoftleafIsNone(SwapEntry entry) => entry.IsNone;
    public bool SoftleafIsSwap(SwapEntry entry) => SoftleafType(entry) == HmmSim.Kernel.SoftleafType.Swap;

    // --- migration (the "is-a" rule) ------------------------------------------------------------
    public bool SoftleafIsMigrationDevicePrivate(SwapEntry entry) => SoftleafType(entry) is
        HmmSim.Kernel.SoftleafType.MigrationDevicePrivateRead or
        HmmSim.Kernel.SoftleafType.MigrationDevicePrivateReadExclusive or
        HmmSim.Kernel.SoftleafType.MigrationDevicePrivateWrite;

    public bool SoftleafIsMigrationDevicePrivateRead(SwapEntry entry) =>
        SoftleafType(entry) == HmmSim.Kernel.SoftleafType.MigrationDevicePrivateRead;

    public bool SoftleafIsMigrationDevicePrivateReadExclusive(SwapEntry entry) =>
        SoftleafType(entry) == HmmSim.Kernel.SoftleafType.MigrationDevicePrivateReadExclusive;

    public bool SoftleafIsMigrationDevicePrivateWrite(SwapEntry entry) =>
        SoftleafType(entry) == HmmSim.Kernel.SoftleafType.MigrationDevicePrivateWrite;

    /// <summary>softleaf_is_migration_read. v1 of the swap-type patch (<see cref="SoftleafMigrationRule.AsPostedV1"/>)
    /// left the device-private read type out while _migration(), _read_exclusive() and _write() took theirs in,
    /// so every caller reading "not a read entry" as "exclusive or writable" misjudges a shared device-private page.</summary>
    public bool SoftleafIsMigrationRead(SwapEntry entry) =>
        SoftleafType(entry) == HmmSim.Kernel.SoftleafType.MigrationRead
        || MigrationRule == SoftleafMigrationRule.Consistent && SoftleafIsMigrationDevicePrivateRead(entry);

    public bool SoftleafIsMigrationReadExclusive(SwapEntry entry) =>
        SoftleafType(entry) == HmmSim.Kernel.SoftleafType.MigrationReadExclusive || SoftleafIsMigrationDevicePrivateReadExclusive(entry);

    public bool SoftleafIsMigrationWrite(SwapEntry entry) =>
        SoftleafType(entry) == HmmSim.Kernel.SoftleafType.MigrationWrite || SoftleafIsMigrationDevicePrivateWrite(entry);

    public bool SoftleafIsMigration(SwapEntry entry) => SoftleafType(entry) switch
    {
        HmmSim.Kernel.SoftleafType.MigrationRead or
        HmmSim.Kernel.SoftleafType.MigrationReadExclusive or
        HmmSim.Kernel.SoftleafType.MigrationWrite => true,
        _ => SoftleafIsMigrationDevicePrivate(entry),
    };

    public bool SoftleafIsMigrationYoung(SwapEntry entry) => SoftleafIsMigration(entry) && IsMigrationEntryYoung(entry);
    public bool SoftleafIsMigrationDirty(SwapEntry entry) => SoftleafIsMigration(entry) && IsMigrationEntryDirty(entry);

    // --- device -----------------------------------------------------------------------------------
    public bool SoftleafIsDevicePrivateWrite(SwapEntry entry) => SoftleafType(entry) == HmmSim.Kernel.SoftleafType.DevicePrivateWrite;

    public bool SoftleafIsDevicePrivate(SwapEntry entry) => SoftleafType(entry) is
        HmmSim.Kernel.SoftleafType.DevicePrivateRead or HmmSim.Kernel.SoftleafType.DevicePrivateWrite;

    public bool SoftleafIsDeviceExclusive(SwapEntry entry) => SoftleafType(entry) == HmmSim.Kernel.SoftleafType.DeviceExclusive;
    public bool SoftleafIsHwpoison(SwapEntry entry) => SoftleafType(entry) == HmmSim.Kernel.SoftleafType.Hwpoison;
    public bool SoftleafIsMarker(SwapEntry entry) => SoftleafType(entry) == HmmSim.Kernel.SoftleafType.Marker;

    // --- markers ----------------------------------------------------------------------------------
    public static ulong SoftleafToMarker(SwapEntry entry) => entry.Offset & PteMarkerMask;
    public bool SoftleafIsPoisonMarker(SwapEntry entry) => SoftleafIsMarker(entry) && (SoftleafToMarker(entry) & PteMarkerPoisoned) != 0;
    public bool SoftleafIsGuardMarker(SwapEntry entry) => SoftleafIsMarker(entry) && (SoftleafToMarker(entry) & PteMarkerGuard) != 0;
    public bool SoftleafIsUffdWpMarker(SwapEntry entry) => SoftleafIsMarker(entry) && (SoftleafToMarker(entry) & PteMarkerUffdWp) != 0;

    // --- PFN / page ---------------------------------------------------------------------------------
    /// <summary>softleaf_has_pfn: migration (any), device-private, device-exclusive, hwpoison. In the
    /// redesign "has a PFN" reads "has a PFN or a device-private index" (the field is the same).</summary>
    public bool SoftleafHasPfn(SwapEntry entry) =>
        SoftleafIsMigration(entry) || SoftleafIsDevicePrivate(entry) || SoftleafIsDeviceExclusive(entry) || SoftleafIsHwpoison(entry);

    /// <summary>softleaf_to_pfn. Asking for the PFN of an entry that carries a device-private index
    /// is the confusion the redesign exists to prevent: a BUG here.</summary>
    public Pfn SoftleafToPfn(SwapEntry entry)
    {
        if (CarriesDevicePrivateIndex(entry))
            ThrowHelper.KernelBug($"softleaf_to_pfn on {entry}: it carries a device-private offset, not a PFN");
        if (!SoftleafHasPfn(entry))
            ThrowHelper.KernelBug($"softleaf_to_pfn on {entry}: it carries no PFN");
        return new Pfn(entry.Offset & SwpPfnMask);
    }

    /// <summary>The device-private index of a redesign device-private or migration-device-private entry.</summary>
    public DevicePrivateIndex SoftleafToDevicePrivateIndex(SwapEntry entry)
    {
        if (!CarriesDevicePrivateIndex(entry))
            ThrowHelper.KernelBug($"{entry} does not carry a device-private offset");
        return new DevicePrivateIndex(entry.Offset & DevicePrivateIdMask);
    }

    /// <summary>softleaf_to_page: a migration entry may only be used while its page is locked.</summary>
    public Page SoftleafToPage(SwapEntry entry)
    {
        var page = PfnSwapEntryToPage(entry);
        if (SoftleafIsMigration(entry) && !page.Folio.IsLocked)
            VmWarn.Warn(Memmap.Kernel, $"VM_WARN_ON_ONCE(softleaf_is_migration && !PageLocked): softleaf_to_page: {entry} names unlocked {page}");
        return page;
    }

    /// <summary>softleaf_to_folio: a migration entry may only be used while its folio is locked.</summary>
    public Folio SoftleafToFolio(SwapEntry entry)
    {
        var folio = PfnSwapEntryToPage(entry).Folio;
        if (SoftleafIsMigration(entry) && !folio.IsLocked)
            VmWarn.Warn(Memmap.Kernel, $"VM_WARN_ON_ONCE(softleaf_is_migration && !folio_test_locked): softleaf_to_folio: {entry} names unlocked {folio}");
        return folio;
    }

    // --- PMD level --------------------------------------------------------------------------------
    /// <summary>The entries pmd_is_valid_softleaf accepts: device-private and migration (which in the
    /// redesign includes migration-device-private).</summary>
    public bool SoftleafIsValidPmdEntry(SwapEntry entry) => SoftleafIsDevicePrivate(entry) || SoftleafIsMigration(entry);

    public bool PmdIsValidSoftleaf(ulong pmd) => SoftleafIsValidPmdEntry(SoftleafFromPmd(pmd));
    public bool PmdIsDevicePrivateEntry(ulong pmd) => SoftleafIsDevicePrivate(SoftleafFromPmd(pmd));
    public bool PmdIsMigrationEntry(ulong pmd) => SoftleafIsMigration(SoftleafFromPmd(pmd));
    public bool PteIsMarker(ulong pte) => SoftleafIsMarker(SoftleafFromPte(pte));
}
