namespace HmmSim.Kernel;

/// <summary>page_vma_mapped_walk::flags (include/linux/rmap.h) with the series' PVMW_DEVICE_PRIVATE.</summary>
[Flags]
internal enum PvmwFlags
{
    None = 0,
    /// <summary>PVMW_SYNC: look even where nothing is mapped yet (the model always holds the lock).</summary>
    Sync = 1 << 0,
    /// <summary>PVMW_MIGRATION: look for migration entries, not mappings.</summary>
    Migration = 1 << 1,
    /// <summary>PVMW_DEVICE_PRIVATE: <see cref="PageVmaMappedWalk.Pfn"/> is a device-private offset.</summary>
    DevicePrivate = 1 << 2,
}

/// <summary>struct page_vma_mapped_walk, the part check_pte/check_pmd read: the number range
/// [Pfn, Pfn + NrPages) and the flags. In the redesign the number of a device-private folio is its
/// device-private offset (folio_page_vma_walk_pfn) and <see cref="PvmwFlags.DevicePrivate"/> says so.</summary>
internal readonly record struct PageVmaMappedWalk(ulong Pfn, ulong NrPages, PvmwFlags Flags);

/// <summary>mm/page_vma_mapped.c: whether a page-table entry maps (or holds a migration entry for) the
/// folio an rmap walk looks for. It compares numbers, not pages: a PFN for a RAM or coherent folio, an
/// offset for a device-private one. Numbers of the two kinds coincide (both spaces start at 0), so
/// whether the entry is device-private must agree with PVMW_DEVICE_PRIVATE first (rule 7 of the
/// series). <see cref="RmapMatch.PfnOnly"/> forgets that comparison.</summary>
internal static class PageVmaMapped
{
    /// <summary>DEFINE_FOLIO_VMA_WALK: page_vma_walk_flags and folio_page_vma_walk_pfn for a folio.</summary>
    public static PageVmaMappedWalk ForFolio(Swapops sw, Folio folio, PvmwFlags flags)
    {
        var head = folio.Page();
        bool indexed = sw.HasMigrationDeviceTypes && head.IsDevicePrivate;
        ulong number = indexed ? head.ToDevicePrivateIndex().Value : head.ToPfn().Value;
        return new PageVmaMappedWalk(number, (ulong)folio.NrPages, indexed ? flags | PvmwFlags.DevicePrivate : flags);
    }

    /// <summary>check_pte: whether <paramref name="pte"/> maps (PVMW_MIGRATION: holds a migration entry
    /// for) a page of the walk's range; <paramref name="number"/> is the entry's PFN or offset, from which
    /// the caller takes the subpage as the kernel does (number - pvmw->pfn).</summary>
    public static bool CheckPte(KernelState kernel, in PageVmaMappedWalk pvmw, ulong pte, ulong pteNr, out ulong number)
    {
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        bool devicePrivate = false;
        number = 0;
        if ((pvmw.Flags & PvmwFlags.Migration) != 0)
        {
            if (Arch.PteNone(pte) || arch.PtePresent(pte))
                return false;
            var entry = arch.PteToSwpEntry(pte);
            if (!sw.SoftleafIsMigration(entry))
                return false;
            devicePrivate = sw.CarriesDevicePrivateIndex(entry);
            number = EntryNumber(sw, entry, devicePrivate);
        }
        else if (arch.PtePresent(pte))
        {
            number = arch.PtePfn(pte).Value;
        }
        else
        {
            if (Arch.PteNone(pte))
                return false;
            var entry = arch.PteToSwpEntry(pte);
            // Un-addressable ZONE_DEVICE memory counts as a mapping of its page.
            if (!sw.SoftleafIsDevicePrivate(entry) && !sw.SoftleafIsDeviceExclusive(entry))
                return false;
            devicePrivate = sw.CarriesDevicePrivateIndex(entry);
            number = EntryNumber(sw, entry, devicePrivate);
        }
        if (!SameKind(kernel, pvmw, devicePrivate))
            return false;
        return InRange(pvmw, number, pteNr);
    }

    /// <summary>check_pmd(pfn, device_private, pvmw): a PMD leaf's range overlaps the walk's range.</summary>
    public static bool CheckPmd(KernelState kernel, in PageVmaMappedWalk pvmw, ulong number, bool devicePrivate) =>
        SameKind(kernel, pvmw, devicePrivate) && InRange(pvmw, number, Arch.PtrsPerTable);

    /// <summary>The PMD leaf cases of page_vma_mapped_walk: a migration entry under PVMW_MIGRATION, a
    /// present huge PMD or a device-private PMD otherwise.</summary>
    public static bool CheckLeafPmd(KernelState kernel, in PageVmaMappedWalk pvmw, ulong pmd)
    {
        var arch = kernel.Arch;
        var sw = kernel.Swapops;
        bool migration = (pvmw.Flags & PvmwFlags.Migration) != 0;
        if (arch.PmdPresent(pmd))
            return !migration && CheckPmd(kernel, pvmw, arch.PmdPfn(pmd).Value, devicePrivate: false);
        var entry = arch.PmdToSwpEntry(pmd);
        if (migration ? !sw.SoftleafIsMigration(entry) : !sw.SoftleafIsDevicePrivate(entry))
            return false;
        bool devicePrivate = sw.CarriesDevicePrivateIndex(entry);
        return CheckPmd(kernel, pvmw, EntryNumber(sw, entry, devicePrivate), devicePrivate);
    }

    /// <summary>The series' "(device_private) != !!(pvmw->flags &amp; PVMW_DEVICE_PRIVATE)" test, unless the
    /// machine runs the variant that forgets it.</summary>
    /// <summary>softleaf_to_pfn / the offset of a device-private entry: under the (space #, space index)
    /// proposal the number is the whole identity, the space id above the young and dirty bits.</summary>
    private static ulong EntryNumber(Swapops sw, SwapEntry entry, bool devicePrivate) =>
        entry.Offset & (devicePrivate ? sw.DevicePrivateIdMask : sw.SwpPfnMask);

    private static bool SameKind(KernelState kernel, in PageVmaMappedWalk pvmw, bool devicePrivate) =>
        kernel.Config.Variants.RmapMatch == RmapMatch.PfnOnly || devicePrivate == ((pvmw.Flags & PvmwFlags.DevicePrivate) != 0);

    private static bool InRange(in PageVmaMappedWalk pvmw, ulong number, ulong nr) =>
        number + nr - 1 >= pvmw.Pfn && number <= pvmw.Pfn + pvmw.NrPages - 1;
}
