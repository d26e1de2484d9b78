using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>walk->action: what walk_p?d_range does after a p?d_entry callback returns 0.</summary>
internal enum PageWalkAction
{
    /// <summary>ACTION_SUBTREE: descend into the entry (the default before each callback).</summary>
    Subtree = 0,
    /// <summary>ACTION_CONTINUE: skip what lies below the entry.</summary>
    Continue = 1,
    /// <summary>ACTION_AGAIN: call the callback for the same entry again (it changed under the walk).</summary>
    Again = 2,
}

/// <summary>Which callbacks of <see cref="IMmWalkOps"/> an ops type provides: the C struct's non-NULL
/// members. Read through a static member of the ops type, so the JIT folds every test away.</summary>
[Flags]
internal enum MmWalkHandlers
{
    None = 0,
    PgdEntry = 1 << 0,
    PudEntry = 1 << 1,
    PmdEntry = 1 << 2,
    PteEntry = 1 << 3,
    PteHole = 1 << 4,
    HugetlbEntry = 1 << 5,
    TestWalk = 1 << 6,
}

/// <summary>struct mm_walk: the walk's mm, the VMA being walked (null over a hole between VMAs and in
/// a debug walk) and the action the last p?d_entry callback chose. <see cref="PmdTable"/> is the table
/// holding the entry given to pmd_entry — with the entry's address, the model's pmd_t pointer.</summary>
internal struct MmWalk(MmStruct mm)
{
    public readonly MmStruct Mm = mm;
    public Vma? Vma;
    public PageWalkAction Action;
    public Pfn PmdTable;
}

/// <summary>struct mm_walk_ops. An implementation is a struct (its fields are the walk's private
/// data) passed by reference to <see cref="Pagewalk.WalkPageRange{TOps}"/>, so every callback is a
/// direct, inlinable call and nothing is allocated per page. Callbacks return 0 to go on, a negative
/// errno or a positive value to stop the walk with that value; entries are passed by reference to
/// their slot in the table page. A callback not in <see cref="Handlers"/> is never called.</summary>
internal interface IMmWalkOps
{
    static abstract MmWalkHandlers Handlers { get; }

    /// <summary>pgd_entry: a non-none PGD entry, before its PUD table is walked.</summary>
    int PgdEntry(ref ulong pgd, ulong addr, ulong next, ref MmWalk walk);
    /// <summary>pud_entry: a non-none PUD entry; may set walk.Action.</summary>
    int PudEntry(ref ulong pud, ulong addr, ulong next, ref MmWalk walk);
    /// <summary>pmd_entry: a non-none PMD entry (table, huge leaf or non-present), called without the
    /// page-table lock, as the kernel's is; may set walk.Action.</summary>
    int PmdEntry(ref ulong pmd, ulong addr, ulong next, ref MmWalk walk);
    /// <summary>pte_entry: every PTE of [addr, next) in turn, none or not, under the page-table lock.</summary>
    int PteEntry(ref ulong pte, ulong addr, ulong next, ref MmWalk walk);
    /// <summary>pte_hole: [addr, next) has no entry at level <paramref name="depth"/> (0 PGD, 2 PUD, 3 PMD)
    /// or, with depth -1, no VMA (walk.Vma is null) or a VMA the walk does not enter.</summary>
    int PteHole(ulong addr, ulong next, int depth, ref MmWalk walk);
    /// <summary>hugetlb_entry: one huge page of a hugetlb VMA; the entry may be none or non-present.</summary>
    int HugetlbEntry(ref ulong pte, ulong hmask, ulong addr, ulong next, ref MmWalk walk);
    /// <summary>test_walk: 0 to walk the VMA, 1 to skip it, a negative errno to stop.</summary>
    int TestWalk(ulong start, ulong end, ref MmWalk walk);
}

/// <summary>mm/pagewalk.c: walk_page_range and walk_page_range_debug, generic over the ops so the
/// callbacks inline. The caller holds mmap_lock (read is enough for every walk here); pmd_entry and
/// pud_entry run without the page-table lock, pte_entry under it (walk_pte_range's
/// pte_offset_map_lock). Holes are reported one PMD-sized step at a time even where a PUD or PGD
/// entry is missing (docs/fidelity.md). The walk levels are compiled fully optimized at their first
/// call: a walk of a few pages (one pagemap entry, one SNAPSHOT window) runs them millions of times
/// before tiered compilation would get to them, and at tier 0 nothing inlines.</summary>
internal static class Pagewalk
{
    private const int DepthPgd = 0;
    private const int DepthPud = 2;
    private const int DepthPmd = 3;

    /// <summary>walk_page_range over [start, end): the VMAs and the holes between them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int WalkPageRange<TOps>(MmStruct mm, ulong start, ulong end, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        if (start >= end)
            return -(int)Errno.EINVAL;
        var walk = new MmWalk(mm);
        var vma = mm.Vmas.FindVma(start);
        int err;
        ulong next;
        do
        {
            if (vma is null || start < vma.Start)
            {
                // No VMA here: report the hole, depth -1, with walk.Vma null.
                walk.Vma = null;
                next = vma is null ? end : Math.Min(end, vma.Start);
                err = Has<TOps>(MmWalkHandlers.PteHole) ? ops.PteHole(start, next, -1, ref walk) : 0;
            }
            else
            {
                walk.Vma = vma;
                next = Math.Min(end, vma.End);
                // find_vma(vma->vm_end), looked up only when the walk goes past this VMA.
                vma = next < end ? mm.Vmas.FindVma(vma.End) : null;
                err = WalkPageTest(start, next, ref walk, ref ops);
                if (err > 0)
                {
                    err = 0;
                    continue;
                }
                if (err < 0)
                    break;
                err = WalkPageRangeInternal(start, next, ref walk, ref ops);
            }
            if (err != 0)
                break;
        }
        while ((start = next) < end);
        return err;
    }

    /// <summary>walk_page_range_debug: every table of the mm over [start, end), ignoring VMAs
    /// (walk.Vma stays null, so huge PMDs are given to pmd_entry and never split).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int WalkPageRangeDebug<TOps>(MmStruct mm, ulong start, ulong end, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        var walk = new MmWalk(mm);
        return WalkPgdRange(start, end, ref walk, ref ops);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Has<TOps>(MmWalkHandlers handler) where TOps : struct, IMmWalkOps =>
        (TOps.Handlers & handler) != 0;

    /// <summary>pgd_addr_end / pud_addr_end / pmd_addr_end: the next boundary of a level, capped at end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong AddrEnd(ulong addr, ulong end, ulong size)
    {
        ulong boundary = (addr + size) & ~(size - 1);
        return boundary - 1 < end - 1 ? boundary : end;
    }

    /// <summary>walk_page_test: test_walk decides; without it a VM_PFNMAP VMA is a hole, not walked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPageTest<TOps>(ulong start, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        if (Has<TOps>(MmWalkHandlers.TestWalk))
            return ops.TestWalk(start, end, ref walk);
        if ((walk.Vma!.Flags & VmFlags.PfnMap) != 0)
        {
            int err = Has<TOps>(MmWalkHandlers.PteHole) ? ops.PteHole(start, end, -1, ref walk) : 0;
            return err != 0 ? err : 1;
        }
        return 0;
    }

    /// <summary>__walk_page_range: a hugetlb VMA goes to hugetlb_entry (or is passed over), any other to the tables.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPageRangeInternal<TOps>(ulong start, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        if (walk.Vma!.IsHugetlb)
            return Has<TOps>(MmWalkHandlers.HugetlbEntry) ? WalkHugetlbRange(start, end, ref walk, ref ops) : 0;
        return WalkPgdRange(start, end, ref walk, ref ops);
    }

    /// <summary>A hole at <paramref name="depth"/>, given to pte_hole one PMD-sized step at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkHole<TOps>(ulong addr, ulong end, int depth, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        if (!Has<TOps>(MmWalkHandlers.PteHole))
            return 0;
        for (ulong next; addr < end; addr = next)
        {
            next = AddrEnd(addr, end, Arch.PmdSize);
            int err = ops.PteHole(addr, next, depth, ref walk);
            if (err != 0)
                return err;
        }
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPgdRange<TOps>(ulong addr, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        var mm = walk.Mm;
        var arch = mm.Arch;
        var pgds = mm.Table(mm.Pgd);
        int err = 0;
        for (ulong next; addr < end; addr = next)
        {
            next = AddrEnd(addr, end, Arch.PgdirSize);
            ref ulong pgd = ref pgds[MmStruct.PgdIndex(addr)];
            if (pgd == 0)
            {
                err = WalkHole(addr, next, DepthPgd, ref walk, ref ops);
                if (err != 0)
                    break;
                continue;
            }
            if (Has<TOps>(MmWalkHandlers.PgdEntry))
            {
                err = ops.PgdEntry(ref pgd, addr, next, ref walk);
                if (err != 0)
                    break;
            }
            if (!arch.IsTable(pgd))
                continue;
            err = WalkPudRange(arch.TablePfn(pgd), addr, next, ref walk, ref ops);
            if (err != 0)
                break;
        }
        return err;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPudRange<TOps>(Pfn pudTable, ulong addr, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        var mm = walk.Mm;
        var arch = mm.Arch;
        var puds = mm.Table(pudTable);
        int err = 0;
        for (ulong next; addr < end; addr = next)
        {
        again:
            next = AddrEnd(addr, end, Arch.PudSize);
            ref ulong pud = ref puds[MmStruct.PudIndex(addr)];
            if (pud == 0)
            {
                err = WalkHole(addr, next, DepthPud, ref walk, ref ops);
                if (err != 0)
                    break;
                continue;
            }
            walk.Action = PageWalkAction.Subtree;
            if (Has<TOps>(MmWalkHandlers.PudEntry))
            {
                err = ops.PudEntry(ref pud, addr, next, ref walk);
                if (err != 0)
                    break;
            }
            if (walk.Action == PageWalkAction.Again)
                goto again;
            if (walk.Action == PageWalkAction.Continue || !arch.IsTable(pud))
                continue;
            err = WalkPmdRange(arch.TablePfn(pud), addr, next, ref walk, ref ops);
            if (err != 0)
                break;
        }
        return err;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPmdRange<TOps>(Pfn pmdTable, ulong addr, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        var mm = walk.Mm;
        var arch = mm.Arch;
        var pmds = mm.Table(pmdTable);
        int err = 0;
        for (ulong next; addr < end; addr = next)
        {
        again:
            next = AddrEnd(addr, end, Arch.PmdSize);
            ref ulong pmd = ref pmds[MmStruct.PmdIndex(addr)];
            if (pmd == 0)
            {
                if (Has<TOps>(MmWalkHandlers.PteHole))
                {
                    err = ops.PteHole(addr, next, DepthPmd, ref walk);
                    if (err != 0)
                        break;
                }
                continue;
            }
            walk.Action = PageWalkAction.Subtree;
            walk.PmdTable = pmdTable;
            if (Has<TOps>(MmWalkHandlers.PmdEntry))
            {
                err = ops.PmdEntry(ref pmd, addr, next, ref walk);
                if (err != 0)
                    break;
            }
            if (walk.Action == PageWalkAction.Again)
                goto again;
            if (walk.Action == PageWalkAction.Continue || !Has<TOps>(MmWalkHandlers.PteEntry))
                continue;
            // With a VMA a huge PMD is split so pte_entry sees its pages; a debug walk leaves it.
            if (walk.Vma is not null && pmd != 0 && !arch.IsTable(pmd) && arch.PmdPresent(pmd))
                HugeMemory.SplitHugePmd(walk.Vma, pmdTable, addr & ~(Arch.PmdSize - 1));
            if (!arch.IsTable(pmd))
                continue;
            err = WalkPteRange(arch.TablePfn(pmd), addr, next, ref walk, ref ops);
            if (err != 0)
                break;
            if (walk.Action == PageWalkAction.Again)
                goto again;
        }
        return err;
    }

    /// <summary>walk_pte_range: pte_entry for each PTE, under the page-table lock in a VMA walk
    /// (pte_offset_map_lock) and without it in a debug walk (no_vma: pte_offset_map).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPteRange<TOps>(Pfn pteTable, ulong addr, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        var mm = walk.Mm;
        if (walk.Vma is null)
            return WalkPteRangeInner(mm.Table(pteTable), addr, end, ref walk, ref ops);
        lock (mm.PageTableLock)
            return WalkPteRangeInner(mm.Table(pteTable), addr, end, ref walk, ref ops);
    }

    /// <summary>walk_pte_range_inner: the tight loop over one PTE table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkPteRangeInner<TOps>(Span<ulong> ptes, ulong addr, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        for (int i = MmStruct.PteIndex(addr); addr < end; addr += Arch.PageSize, i++)
        {
            int err = ops.PteEntry(ref ptes[i], addr, addr + Arch.PageSize, ref walk);
            if (err != 0)
                return err;
        }
        return 0;
    }

    /// <summary>walk_hugetlb_range: hugetlb_entry once per huge page (PMD-sized here); where no PMD
    /// table exists, pte_hole with depth -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WalkHugetlbRange<TOps>(ulong addr, ulong end, ref MmWalk walk, ref TOps ops)
        where TOps : struct, IMmWalkOps
    {
        var mm = walk.Mm;
        const ulong hmask = ~(Arch.PmdSize - 1);
        for (ulong next; addr < end; addr = next)
        {
            next = AddrEnd(addr, end, Arch.PmdSize);
            int err;
            if (mm.PmdTable(addr, alloc: false, out var pmdTable))
            {
                walk.PmdTable = pmdTable;
                err = ops.HugetlbEntry(ref mm.PmdRef(pmdTable, addr), hmask, addr, next, ref walk);
            }
            else
            {
                err = Has<TOps>(MmWalkHandlers.PteHole) ? ops.PteHole(addr, next, -1, ref walk) : 0;
            }
            if (err != 0)
                return err;
        }
        return 0;
    }
}

/// <summary>One step of a hand-written PMD loop: the 2 MiB-or-less slice [Addr, Next) and the non-none
/// PMD entry covering it (a table, a huge leaf, or a non-present entry).</summary>
internal readonly record struct PmdStep(ulong Addr, ulong Next, Pfn PmdTable, ulong Pmd);

/// <summary>The pmd_addr_end loop that zap_pmd_range, change_pmd_range, copy_pmd_range and
/// madvise's ranges write out by hand in the kernel (they are not walk_page_range users): the non-none
/// PMD entries over [start, end), skipping a whole PUD where no PMD table exists. Tables are read
/// afresh at every step, so the body may split or replace the PMD it is given. Allocates nothing.</summary>
internal ref struct PmdWalk(MmStruct mm, ulong start, ulong end)
{
    private ulong _next = start;

    public PmdStep Current { get; private set; }

    public readonly PmdWalk GetEnumerator() => this;

    public bool MoveNext()
    {
        while (_next < end)
        {
            ulong addr = _next;
            ulong next = Math.Min(end, (addr + Arch.PmdSize) & ~(Arch.PmdSize - 1));
            if (!mm.PmdTable(addr, alloc: false, out var pmdTable))
            {
                _next = Math.Min(end, (addr + Arch.PudSize) & ~(Arch.PudSize - 1));
                continue;
            }
            _next = next;
            ulong pmd = mm.PmdRef(pmdTable, addr);
            if (pmd == 0)
                continue;
            Current = new PmdStep(addr, next, pmdTable, pmd);
            return true;
        }
        return false;
    }
}
