namespace HmmSim.Kernel;

/// <summary>mm/madvise.c (and MADV_COLLAPSE from mm/khugepaged.c).</summary>
internal static class Madvise
{
    /// <summary>do_madvise. Callers hold mmap_lock for write (the model takes it for every advice).</summary>
    public static Errno DoMadvise(MmStruct mm, ulong start, ulong lenIn, Advice advice)
    {
        if (advice is not (Advice.Normal or Advice.Random or Advice.Sequential or Advice.WillNeed or Advice.DontNeed or Advice.Free or Advice.HugePage or Advice.NoHugePage or Advice.Collapse))
            return Errno.EINVAL;
        if ((start & (Arch.PageSize - 1)) != 0)
            return Errno.EINVAL;
        ulong len = (lenIn + Arch.PageSize - 1) & Arch.PageMask;
        if (lenIn != 0 && len == 0)
            return Errno.EINVAL;
        ulong end = start + len;
        if (end < start)
            return Errno.EINVAL;
        if (end == start)
            return Errno.None;
        // madvise_walk_vmas: apply to each VMA piece; a hole means ENOMEM at the end.
        Errno unmappedError = Errno.None;
        ulong addr = start;
        while (addr < end)
        {
            var vma = mm.Vmas.FindVma(addr);
            if (vma is null || vma.Start >= end)
            {
                unmappedError = Errno.ENOMEM;
                break;
            }
            if (vma.Start > addr)
            {
                unmappedError = Errno.ENOMEM;
                addr = vma.Start;
            }
            ulong pieceEnd = Math.Min(vma.End, end);
            var err = Apply(mm, vma, addr, pieceEnd, advice);
            if (err != Errno.None)
                return err;
            addr = pieceEnd;
        }
        return unmappedError;
    }

    private static Errno Apply(MmStruct mm, Vma vma, ulong start, ulong end, Advice advice)
    {
        switch (advice)
        {
            case Advice.Normal:
                UpdateVma(mm, vma, start, end, vma.Flags & ~(VmFlags.RandRead | VmFlags.SeqRead));
                return Errno.None;
            case Advice.Random:
                UpdateVma(mm, vma, start, end, (vma.Flags & ~VmFlags.SeqRead) | VmFlags.RandRead);
                return Errno.None;
            case Advice.Sequential:
                UpdateVma(mm, vma, start, end, (vma.Flags & ~VmFlags.RandRead) | VmFlags.SeqRead);
                return Errno.None;
            case Advice.WillNeed:
                // madvise_willneed: readahead from swap or the file; the model has neither to read from.
                return Errno.None;
            case Advice.DontNeed:
                if ((vma.Flags & (VmFlags.Locked | VmFlags.PfnMap)) != 0)
                    return Errno.EINVAL;
                if (vma.IsHugetlb)
                {
                    start = (start + Arch.PmdSize - 1) & ~(Arch.PmdSize - 1);
                    end &= ~(Arch.PmdSize - 1);
                    if (start >= end)
                        return Errno.None;
                }
                MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, start, end, null);
                Zap.ZapRange(vma, start, end);
                return Errno.None;
            case Advice.Free:
                if (!vma.IsAnonymous || vma.IsShared)
                    return Errno.EINVAL;
                MadviseFreeSingleVma(vma, start, end);
                return Errno.None;
            case Advice.HugePage:
            case Advice.NoHugePage:
                {
                    var flags = advice == Advice.HugePage
                        ? (vma.Flags | VmFlags.HugePage) & ~VmFlags.NoHugePage
                        : (vma.Flags | VmFlags.NoHugePage) & ~VmFlags.HugePage;
                    UpdateVma(mm, vma, start, end, flags);
                    return Errno.None;
                }
            case Advice.Collapse:
                return Khugepaged.MadviseCollapse(vma, start, end);
            default:
                return Errno.EINVAL;
        }
    }

    /// <summary>madvise_update_vma: split to the range and set the flags, then merge back if possible.</summary>
    private static void UpdateVma(MmStruct mm, Vma vma, ulong start, ulong end, VmFlags flags)
    {
        if (flags == vma.Flags)
            return;
        if (start > vma.Start)
            vma = Mmap.SplitVma(mm, vma, start);
        if (end < vma.End)
            Mmap.SplitVma(mm, vma, end);
        vma.SetFlags(flags);
        Mmap.TryMergeNeighbours(mm, vma);
    }

    /// <summary>madvise_free_single_vma with madvise_free_pte_range: exclusively mapped anon pages become lazily freeable (clean, not
    /// swap-backed); with no reclaim in the model they keep their data until written or zapped.</summary>
    private static void MadviseFreeSingleVma(Vma vma, ulong start, ulong end)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, start, end, null);
        foreach (var (addr, next, pmdTable, pmd) in new PmdWalk(mm, start, end))
        {
            if (!arch.IsTable(pmd))
            {
                if (!arch.PmdPresent(pmd) || HugeMemory.IsHugeZeroPmd(mm.Kernel, pmd))
                    continue;
                bool whole = (addr & (Arch.PmdSize - 1)) == 0 && next - addr == Arch.PmdSize;
                if (!whole)
                    HugeMemory.SplitHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1));
                else
                {
                    var folio = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio;
                    if (folio.MapCount == 1)
                        folio.ClearFlag(PageFlags.Dirty | PageFlags.SwapBacked);
                    continue;
                }
            }
            if (!mm.PteTable(pmdTable, addr, alloc: false, out var pteTable))
                continue;
            lock (mm.PageTableLock)
            {
                for (ulong a = addr; a < next; a += Arch.PageSize)
                {
                    ref ulong slot = ref mm.PteRef(pteTable, a);
                    if (slot == 0 || !arch.PtePresent(slot))
                        continue;
                    var page = Memory.VmNormalPage(vma, slot);
                    if (page.IsNull || !page.Folio.IsAnon || page.Folio.MapCount != 1)
                        continue;
                    page.Folio.ClearFlag(PageFlags.Dirty | PageFlags.SwapBacked);
                    slot = arch.PteMkold(arch.PteMkclean(slot));
                }
            }
        }
    }
}
