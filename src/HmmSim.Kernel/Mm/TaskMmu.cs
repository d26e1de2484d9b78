using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>fs/proc/task_mmu.c: /proc/pid/pagemap entries (read with CAP_SYS_ADMIN, so PFNs show).</summary>
internal static class TaskMmu
{
    public const ulong PmPresent = 1UL << 63;
    public const ulong PmSwap = 1UL << 62;
    public const ulong PmFile = 1UL << 61;
    public const ulong PmUffdWp = 1UL << 57;
    public const ulong PmMmapExclusive = 1UL << 56;
    public const ulong PmSoftDirty = 1UL << 55;
    public const ulong PmPframeMask = (1UL << 55) - 1;

    /// <summary>The pagemap entry for one address: pagemap_read's walk_page_range over one page.
    /// The caller holds mmap_lock for read and the page-table lock.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong PagemapEntry(MmStruct mm, ulong addr)
    {
        var ops = new PagemapOps();
        Pagewalk.WalkPageRange(mm, addr & Arch.PageMask, (addr & Arch.PageMask) + Arch.PageSize, ref ops);
        return ops.Pme;
    }

    /// <summary>pagemap_ops with the one-entry struct pagemapread as its field.</summary>
    private struct PagemapOps : IMmWalkOps
    {
        public ulong Pme;

        public static MmWalkHandlers Handlers => MmWalkHandlers.PmdEntry | MmWalkHandlers.PteHole | MmWalkHandlers.HugetlbEntry;

        public int PmdEntry(ref ulong pmd, ulong addr, ulong next, ref MmWalk walk)
        {
            Pme = PagemapPmdRange(walk.Mm, walk.Vma!, pmd, addr);
            return 0;
        }

        /// <summary>pagemap_pte_hole: no VMA or no table reads as an empty entry.</summary>
        public int PteHole(ulong addr, ulong next, int depth, ref MmWalk walk)
        {
            Pme = 0;
            return 0;
        }

        /// <summary>pagemap_hugetlb_range: a hugetlb PMD reads as a huge PMD does.</summary>
        public int HugetlbEntry(ref ulong pte, ulong hmask, ulong addr, ulong next, ref MmWalk walk)
        {
            Pme = pte == 0 ? 0 : PagemapPmdRange(walk.Mm, walk.Vma!, pte, addr);
            return 0;
        }

        public readonly int PgdEntry(ref ulong pgd, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int PudEntry(ref ulong pud, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int PteEntry(ref ulong pte, ulong addr, ulong next, ref MmWalk walk) => 0;
        public readonly int TestWalk(ulong start, ulong end, ref MmWalk walk) => 0;
    }

    /// <summary>pagemap_pmd_range for the page at <paramref name="addr"/>: a huge or non-present PMD,
    /// or the PTE in its table (pagemap_pte_range's body).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ulong PagemapPmdRange(MmStruct mm, Vma vma, ulong pmd, ulong addr)
    {
        var arch = mm.Arch;
        int idx = MmStruct.PteIndex(addr);
        if (!arch.IsTable(pmd))
        {
            if (!arch.PmdPresent(pmd))
                return SwapEntryFlags(mm, arch.PmdToSwpEntry(pmd), idx, arch.PmdSwpSoftDirty(pmd));
            ulong flags = PmPresent;
            if (arch.PmdSoftDirty(pmd))
                flags |= PmSoftDirty;
            var page = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd));
            var folio = page.Folio;
            if (!folio.IsAnon)
                flags |= PmFile;
            // pagemap_pmd_range: exclusive when the folio is mapped once (the huge zero folio is never counted).
            if (!folio.IsZero && folio.MapCount == 1)
                flags |= PmMmapExclusive;
            return flags | ((arch.PmdPfn(pmd).Value + (ulong)idx) & PmPframeMask);
        }
        ulong pte = mm.Table(arch.TablePfn(pmd))[idx];
        if (pte == 0)
            return 0;
        if (!arch.PtePresent(pte))
            return SwapEntryFlags(mm, arch.PteToSwpEntry(pte), 0, arch.PteSwpSoftDirty(pte));
        ulong f = PmPresent | (arch.PtePfn(pte).Value & PmPframeMask);
        if (arch.PteSoftDirty(pte))
            f |= PmSoftDirty;
        var p = Memory.VmNormalPage(vma, pte);
        if (!p.IsNull)
        {
            if (!p.Folio.IsAnon)
                f |= PmFile;
            if (p.MapCount + p.Folio.EntireMapCount == 1)
                f |= PmMmapExclusive;
        }
        return f;
    }

    /// <summary>A swap-type entry: PM_SWAP with type and offset (offset &lt;&lt; MAX_SWAPFILES_SHIFT | type);
    /// migration entries of file folios also say PM_FILE.</summary>
    private static ulong SwapEntryFlags(MmStruct mm, SwapEntry entry, int idx, bool softDirty)
    {
        ulong frame = (entry.Offset + (ulong)idx) << SwapEntry.MaxSwapfilesShift | entry.Type;
        ulong flags = PmSwap | (frame & PmPframeMask);
        if (softDirty)
            flags |= PmSoftDirty;
        var sw = mm.Kernel.Swapops;
        if (sw.SoftleafHasPfn(entry))
        {
            var page = sw.SoftleafToPage(entry);
            if (!page.Folio.IsAnon)
                flags |= PmFile;
            if (page.MapCount + page.Folio.EntireMapCount == 1)
                flags |= PmMmapExclusive;
        }
        return flags;
    }
}
