namespace HmmSim.Kernel;

/// <summary>The level of the entry that maps a page in a <see cref="PtDump"/>.</summary>
internal enum PtDumpLevel
{
    /// <summary>No entry: a hole at any level, or a none PTE.</summary>
    None,
    Pte,
    /// <summary>A PMD leaf: a THP, a hugetlb page, or a non-present PMD (migration or device-private).</summary>
    Pmd,
}

/// <summary>The software and hardware bits of one entry a dump shows.</summary>
[Flags]
internal enum PtDumpFlags
{
    None = 0,
    Write = 1 << 0,
    Dirty = 1 << 1,
    Young = 1 << 2,
    SoftDirty = 1 << 3,
    UffdWp = 1 << 4,
    /// <summary>A swap entry's exclusive bit, or PG_anon_exclusive on a present anonymous page.</summary>
    Exclusive = 1 << 5,
    Special = 1 << 6,
    ProtNone = 1 << 7,
}

/// <summary>One page's mapping as the page tables hold it. <see cref="Frame"/> is the PFN (present, or a
/// PFN-carrying swap entry) or, when <see cref="IsDevicePrivateIndex"/>, the device-private index the
/// redesign's entries carry instead; null for none entries and plain swap or marker entries.</summary>
internal readonly record struct PtDumpEntry(
    ulong Addr,
    PtDumpLevel Level,
    ulong Raw,
    bool Present,
    SoftleafType Type,
    uint SwapType,
    ulong? Frame,
    bool IsDevicePrivateIndex,
    PtDumpFlags Flags);

/// <summary>A read-only page-table walk of a user range, one entry per page, in the spirit of
/// mm/ptdump.c's note_page (which reports kernel mappings by range): every entry is decoded with the
/// arch's pte_*/pmd_* helpers and the softleaf helpers, never by reading bits here. Unlike the
/// pagemap walk it reports the raw entry, its level and its kind by name. The caller holds mmap_lock
/// for read; huge PMDs are left whole (the walk never descends below a leaf).</summary>
internal static class PtDump
{
    /// <summary>The entries for [<paramref name="start"/>, <paramref name="end"/>), page by page.</summary>
    public static List<PtDumpEntry> Walk(MmStruct mm, ulong start, ulong end)
    {
        var ops = new DumpOps { Entries = new List<PtDumpEntry>((int)Math.Min((end - start) / Arch.PageSize, 1 << 16)) };
        Pagewalk.WalkPageRange(mm, start, end, ref ops);
        return ops.Entries;
    }

    /// <summary>The kernel's SWP_* name of a softleaf type, as include/linux/swap.h spells it.</summary>
    public static string SwapTypeName(SoftleafType type) => type switch
    {
        SoftleafType.None => "none",
        SoftleafType.Swap => "swap",
        SoftleafType.MigrationRead => "SWP_MIGRATION_READ",
        SoftleafType.MigrationReadExclusive => "SWP_MIGRATION_READ_EXCLUSIVE",
        SoftleafType.MigrationWrite => "SWP_MIGRATION_WRITE",
        SoftleafType.DevicePrivateRead => "SWP_DEVICE_READ",
        SoftleafType.DevicePrivateWrite => "SWP_DEVICE_WRITE",
        SoftleafType.DeviceExclusive => "SWP_DEVICE_EXCLUSIVE",
        SoftleafType.MigrationDevicePrivateRead => "SWP_MIGRATION_DEVICE_READ",
        SoftleafType.MigrationDevicePrivateReadExclusive => "SWP_MIGRATION_DEVICE_READ_EXCLUSIVE",
        SoftleafType.MigrationDevicePrivateWrite => "SWP_MIGRATION_DEVICE_WRITE",
        SoftleafType.Hwpoison => "SWP_HWPOISON",
        _ => "SWP_PTE_MARKER",
    };

    private struct DumpOps : IMmWalkOps
    {
        public List<PtDumpEntry> Entries;

        public static MmWalkHandlers Handlers =>
            MmWalkHandlers.PmdEntry | MmWalkHandlers.PteEntry | MmWalkHandlers.PteHole | MmWalkHandlers.HugetlbEntry;

        /// <summary>A leaf or non-present PMD is reported page by page and not descended into, so the
        /// walk does not split it (walk_pmd_range would, for pte_entry's sake).</summary>
        public int PmdEntry(ref ulong pmd, ulong addr, ulong next, ref MmWalk walk)
        {
            var arch = walk.Mm.Arch;
            if (arch.IsTable(pmd))
                return 0;
            walk.Action = PageWalkAction.Continue;
            AddPmd(walk.Mm, walk.Vma, pmd, addr, next);
            return 0;
        }

        public int HugetlbEntry(ref ulong pte, ulong hmask, ulong addr, ulong next, ref MmWalk walk)
        {
            if (pte == 0)
                return PteHole(addr, next, 3, ref walk);
            AddPmd(walk.Mm, walk.Vma, pte, addr, next);
            return 0;
        }

        public int PteEntry(ref ulong pte, ulong addr, ulong next, ref MmWalk walk)
        {
            var mm = walk.Mm;
            var arch = mm.Arch;
            if (pte == 0)
            {
                Entries.Add(new PtDumpEntry(addr, PtDumpLevel.None, 0, false, SoftleafType.None, 0, null, false, PtDumpFlags.None));
                return 0;
            }
            if (arch.PtePresent(pte))
            {
                var flags = Bit(arch.PteWrite(pte), PtDumpFlags.Write) | Bit(arch.PteDirty(pte), PtDumpFlags.Dirty)
                    | Bit(arch.PteYoung(pte), PtDumpFlags.Young) | Bit(arch.PteSoftDirty(pte), PtDumpFlags.SoftDirty)
                    | Bit(arch.PteSpecial(pte), PtDumpFlags.Special) | Bit(arch.PteProtNone(pte), PtDumpFlags.ProtNone);
                if (walk.Vma is { } vma && Memory.VmNormalPage(vma, pte) is { IsNull: false } page && page.Folio.IsAnon && page.AnonExclusive)
                    flags |= PtDumpFlags.Exclusive;
                Entries.Add(new PtDumpEntry(addr, PtDumpLevel.Pte, pte, true, SoftleafType.None, 0, arch.PtePfn(pte).Value, false, flags));
                return 0;
            }
            var entry = mm.Kernel.Swapops.SoftleafFromPte(pte);
            var swapFlags = Bit(arch.PteSwpSoftDirty(pte), PtDumpFlags.SoftDirty) | Bit(arch.PteSwpExclusive(pte), PtDumpFlags.Exclusive)
                | Bit(arch.PteSwpUffdWp(pte), PtDumpFlags.UffdWp);
            Entries.Add(Leaf(mm, addr, PtDumpLevel.Pte, pte, entry, 0, swapFlags));
            return 0;
        }

        /// <summary>A hole: every page in it reads as none.</summary>
        public int PteHole(ulong addr, ulong next, int depth, ref MmWalk walk)
        {
            for (; addr < next; addr += Arch.PageSize)
                Entries.Add(new PtDumpEntry(addr, PtDumpLevel.None, 0, false, SoftleafType.None, 0, null, false, PtDumpFlags.None));
            return 0;
        }

        public readonly int PgdEntry(ref ulong pgd, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int PudEntry(ref ulong pud, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int TestWalk(ulong start, ulong end, ref MmWalk walk) => 0;

        private readonly void AddPmd(MmStruct mm, Vma? vma, ulong pmd, ulong addr, ulong next)
        {
            var arch = mm.Arch;
            ulong head = addr & ~(Arch.PmdSize - 1);
            if (arch.PmdPresent(pmd))
            {
                var flags = Bit(arch.PmdWrite(pmd), PtDumpFlags.Write) | Bit(arch.PmdDirty(pmd), PtDumpFlags.Dirty)
                    | Bit(arch.PmdYoung(pmd), PtDumpFlags.Young) | Bit(arch.PmdSoftDirty(pmd), PtDumpFlags.SoftDirty)
                    | Bit(arch.PmdProtNone(pmd), PtDumpFlags.ProtNone);
                ulong pfn = arch.PmdPfn(pmd).Value;
                for (; addr < next; addr += Arch.PageSize)
                {
                    ulong idx = (addr - head) / Arch.PageSize;
                    var page = mm.Kernel.Memmap.PfnToPage(new Pfn(pfn + idx));
                    var f = flags | Bit(page.Folio.IsAnon && page.AnonExclusive, PtDumpFlags.Exclusive);
                    Entries.Add(new PtDumpEntry(addr, PtDumpLevel.Pmd, pmd, true, SoftleafType.None, 0, pfn + idx, false, f));
                }
                return;
            }
            var entry = mm.Kernel.Swapops.SoftleafFromPmd(pmd);
            var swapFlags = Bit(arch.PmdSwpSoftDirty(pmd), PtDumpFlags.SoftDirty) | Bit(arch.PmdSwpExclusive(pmd), PtDumpFlags.Exclusive)
                | Bit(arch.PmdSwpUffdWp(pmd), PtDumpFlags.UffdWp);
            for (; addr < next; addr += Arch.PageSize)
                Entries.Add(Leaf(mm, addr, PtDumpLevel.Pmd, pmd, entry, (addr - head) / Arch.PageSize, swapFlags));
        }

        /// <summary>A non-present entry decoded by the softleaf helpers; <paramref name="idx"/> is the
        /// page's index inside a PMD-level entry (the entry names its head).</summary>
        private static PtDumpEntry Leaf(MmStruct mm, ulong addr, PtDumpLevel level, ulong raw, SwapEntry entry, ulong idx, PtDumpFlags flags)
        {
            var sw = mm.Kernel.Swapops;
            var type = sw.SoftleafType(entry);
            ulong? frame = null;
            bool isIndex = false;
            if (sw.CarriesDevicePrivateIndex(entry))
            {
                frame = sw.SoftleafToDevicePrivateIndex(entry).Value + idx;
                isIndex = true;
            }
            else if (sw.SoftleafHasPfn(entry))
            {
                frame = sw.SoftleafToPfn(entry).Value + idx;
            }
            if (sw.SoftleafIsMigrationYoung(entry))
                flags |= PtDumpFlags.Young;
            if (sw.SoftleafIsMigrationDirty(entry))
                flags |= PtDumpFlags.Dirty;
            if (type is SoftleafType.MigrationWrite or SoftleafType.MigrationDevicePrivateWrite or SoftleafType.DevicePrivateWrite)
                flags |= PtDumpFlags.Write;
            return new PtDumpEntry(addr, level, raw, false, type, entry.Type, frame, isIndex, flags);
        }

        private static PtDumpFlags Bit(bool on, PtDumpFlags flag) => on ? flag : PtDumpFlags.None;
    }
}
