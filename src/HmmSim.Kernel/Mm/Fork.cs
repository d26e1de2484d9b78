namespace HmmSim.Kernel;

/// <summary>kernel/fork.c dup_mmap and mm/memory.c copy_page_range: the child's address space.
/// A failure (a device-exclusive folio locked by someone else) fails the whole fork with ENOMEM.</summary>
internal static class Fork
{
    /// <summary>dup_mmap: copies every VMA (VM_DONTCOPY ones excepted) and, where vma_needs_copy says
    /// so, its page tables. Called with the parent's mmap_lock held for write.</summary>
    public static Errno DupMmap(MmStruct parent, MmStruct child)
    {
        foreach (var src in parent.Vmas.All)
        {
            if ((src.Flags & VmFlags.DontCopy) != 0)
                continue;
            var dst = new Vma(child, src.Start, src.End, src.Flags, src.PgOff, src.File) { Ops = src.Ops };
            dst.File?.MmapAdd(dst);
            if (dst.File is not null)
                Shmem.FileGet(dst.File);
            if ((src.Flags & VmFlags.WipeOnFork) == 0)
                AnonVmaFork(dst, src);
            child.Vmas.Insert(dst);
            if ((src.Flags & VmFlags.WipeOnFork) == 0 && VmaNeedsCopy(src) && !CopyPageRange(dst, src))
                return Errno.ENOMEM;
        }
        return Errno.None;
    }

    /// <summary>anon_vma_fork: the child VMA is linked into every anon_vma of the parent's chain (so rmap
    /// finds COW-shared folios in the child) and gets a fresh anon_vma of its own for new folios.</summary>
    private static void AnonVmaFork(Vma dst, Vma src)
    {
        if (src.AnonVma is null)
            return;
        foreach (var av in src.AnonVmaChain.ToArray())
            av.Link(dst);
        var own = new AnonVma(dst.Mm.Kernel.Memmap, src.AnonVma);
        own.Link(dst);
        dst.AnonVma = own;
    }

    /// <summary>vma_needs_copy: shared and file mappings without anon pages are refaulted, not copied.</summary>
    private static bool VmaNeedsCopy(Vma src) =>
        (src.Flags & (VmFlags.PfnMap | VmFlags.MixedMap)) != 0 || src.AnonVma is not null || src.IsHugetlb;

    /// <summary>copy_page_range.</summary>
    private static bool CopyPageRange(Vma dst, Vma src)
    {
        var smm = src.Mm;
        var dmm = dst.Mm;
        var arch = smm.Arch;
        if (src.IsCowMapping)
            MmuNotifier.InvalidateRange(smm, MmuNotifyEvent.ProtectionPage, src.Start, src.End, null);
        foreach (var (addr, next, spmdT, spmd) in new PmdWalk(smm, src.Start, src.End))
        {
            if (!dmm.PmdTable(addr, alloc: true, out var dpmdT))
                ThrowHelper.KernelBug("fork: out of memory for the child's page tables");
            if (!arch.IsTable(spmd))
            {
                if (src.IsHugetlb)
                {
                    Hugetlb.CopyHugePmd(dst, src, dpmdT, spmdT, addr & ~(Arch.PmdSize - 1));
                    continue;
                }
                if (HugeMemory.CopyHugePmd(dst, src, dpmdT, spmdT, addr & ~(Arch.PmdSize - 1)))
                    continue;
                // -EAGAIN: the PMD was split (a pinned exclusive THP); copy its PTEs below.
            }
            if (!smm.PteTable(spmdT, addr, alloc: false, out var spteT))
                continue;
            if (!dmm.PteTable(dpmdT, addr, alloc: true, out var dpteT))
                ThrowHelper.KernelBug("fork: out of memory for the child's page tables");
            if (!CopyPteRange(dst, src, dpteT, spteT, addr, next))
                return false;
        }
        return true;
    }

    private static bool CopyPteRange(Vma dst, Vma src, Pfn dpteT, Pfn spteT, ulong start, ulong end)
    {
        var smm = src.Mm;
        var dmm = dst.Mm;
        var arch = smm.Arch;
        for (ulong addr = start; addr < end; addr += Arch.PageSize)
        {
            lock (smm.PageTableLock)
            {
                ref ulong sslot = ref smm.PteRef(spteT, addr);
                ulong pte = sslot;
                if (pte == 0)
                    continue;
                if (!arch.PtePresent(pte))
                {
                    var copied = SwapFaults.CopyNonPresentPte(dst, src, ref sslot, addr, out ulong childPte);
                    if (copied == Errno.EBUSY)
                        return false;   // a device-exclusive folio was locked
                    if (copied == Errno.None)
                    {
                        lock (dmm.PageTableLock)
                            dmm.PteRef(dpteT, addr) = childPte;
                        continue;
                    }
                    pte = sslot;   // restored from device-exclusive: copy it as a present PTE
                }
                var page = Memory.VmNormalPage(src, pte);
                if (!page.IsNull)
                {
                    var folio = page.Folio;
                    if (folio.IsAnon && page.AnonExclusive && FolioMaybeDmaPinned(folio))
                    {
                        // copy_present_page: a pinned exclusive page must stay the parent's; the child gets a copy now.
                        ulong copied = CopyPresentPage(dst, page, pte, addr);
                        lock (dmm.PageTableLock)
                            dmm.PteRef(dpteT, addr) = copied;
                        continue;
                    }
                    if (folio.IsAnon)
                        page.DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;   // now shared with the child
                    folio.Get();
                    Rmap.FolioDupRmapPtes(folio, page, 1, smm.Kernel);
                    if (folio.IsAnon)
                        Interlocked.Increment(ref dmm.AnonRss);
                    else
                        Interlocked.Increment(ref dmm.ShmemRss);
                }
                if (src.IsCowMapping && arch.PteWrite(pte))
                {
                    sslot = arch.PteWrprotect(pte);
                    pte = arch.PteWrprotect(pte);
                }
                if ((src.Flags & VmFlags.Shared) != 0)
                    pte = arch.PteMkclean(pte);
                pte = arch.PteMkold(pte);
                lock (dmm.PageTableLock)
                    dmm.PteRef(dpteT, addr) = pte;
            }
        }
        return true;
    }

    /// <summary>folio_maybe_dma_pinned.</summary>
    public static bool FolioMaybeDmaPinned(Folio folio) => folio.PinCount > 0;

    private static ulong CopyPresentPage(Vma dst, Page srcPage, ulong pte, ulong addr)
    {
        var arch = dst.Mm.Arch;
        Memory.AnonVmaPrepare(dst);
        var folio = Memory.AllocUserFolio(dst.Mm.Kernel, 0) ?? ThrowHelper.KernelBug<Folio>("fork: out of memory copying a pinned page");
        folio.Page().CopyDataFrom(srcPage);
        Rmap.FolioAddNewAnonRmap(folio, dst, addr, pmdMapped: false);
        Interlocked.Increment(ref dst.Mm.AnonRss);
        ulong e = arch.PfnPte(folio.Page().ToPfn(), dst.PageProt);
        if (arch.PteDirty(pte))
            e = arch.PteMkdirty(e);
        if ((dst.Flags & VmFlags.Write) != 0 && arch.PteWrite(pte))
            e = arch.PteMkwrite(e);
        return e;
    }
}
