namespace HmmSim.Kernel;

/// <summary>mm/hugetlb.c: a pool of 2 MiB pages reserved at boot (vm.nr_hugepages), mapped by
/// huge PMD entries of VM_HUGETLB VMAs. Private mappings COW on fork; shared ones share a page cache.</summary>
internal sealed class HugetlbPool
{
    private readonly KernelState _kernel;
    private readonly Lock _lock = new();
    private readonly Stack<Folio> _free = new();

    public HugetlbPool(KernelState kernel, int pages)
    {
        _kernel = kernel;
        for (int i = 0; i < pages; i++)
        {
            var page = kernel.Buddy.Alloc(Arch.HpagePmdOrder, compound: true);
            if (page.IsNull)
                break;
            var folio = page.Folio;
            folio.SetFlag(PageFlags.Hugetlb);
            folio.Head.RefCount = 0;   // free huge pages sit in the pool with no references
            _free.Push(folio);
            Total++;
        }
    }

    public int Total { get; }
    public int Free
    {
        get
        {
            lock (_lock)
                return _free.Count;
        }
    }

    /// <summary>alloc_hugetlb_folio: a zeroed huge page with one reference, or null when the pool is empty.</summary>
    public Folio? Alloc()
    {
        Folio folio;
        lock (_lock)
        {
            if (_free.Count == 0)
                return null;
            folio = _free.Pop();
        }
        folio.Head.RefCount = 1;
        return folio;
    }

    /// <summary>free_huge_folio: back to the pool, with its bytes released.</summary>
    public void FreeFolio(Folio folio)
    {
        for (int i = 0; i < folio.NrPages; i++)
        {
            ref var d = ref folio.Page(i).Desc;
            if (d.Private != 0)
                _kernel.Memmap.Data.Release(ref d.Private);
            d.Flags &= ~(uint)PageFlags.AnonExclusive;
        }
        folio.Head.Flags &= ~(uint)(PageFlags.Anon | PageFlags.Dirty);
        folio.Mapping = 0;
        lock (_lock)
            _free.Push(folio);
    }

    /// <summary>remove_inode_hugepages for an unlinked hugetlbfs file.</summary>
    public void Truncate(AddressSpace mapping)
    {
        foreach (var (index, folio) in mapping.Entries())
        {
            mapping.Remove(index, out _);
            folio.Put();
        }
    }
}

internal static class Hugetlb
{
    /// <summary>hugetlb_fault: map (or COW) the huge page covering the address with a huge PMD.</summary>
    public static VmFaultResult HugetlbFault(ref VmFault vmf)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        ulong haddr = vmf.Address & ~(Arch.PmdSize - 1);
        bool write = (vmf.Flags & FaultFlags.Write) != 0;
        kernel.VmStat.Inc(VmStatItem.HugetlbFaults);
        if (!mm.PmdTable(haddr, alloc: true, out var pmdTable))
            return VmFaultResult.Oom;
        ulong pmd = mm.PmdRef(pmdTable, haddr);
        if (pmd != 0)
        {
            if (write && !arch.PmdWrite(pmd))
                return HugetlbWp(ref vmf, pmdTable, pmd);
            lock (mm.PageTableLock)
            {
                ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
                if (slot == pmd)
                    slot = write ? arch.PmdMkdirty(arch.PmdMkyoung(pmd)) : arch.PmdMkyoung(pmd);
            }
            return VmFaultResult.None;
        }
        Folio folio;
        bool anon;
        if (vma.IsShared)
        {
            var mapping = vma.File!;
            ulong index = vma.LinearPageIndex(haddr) >> Arch.HpagePmdOrder;
            lock (mapping.Lock)
            {
                if (mapping.Get(index) is { } cached)
                {
                    folio = cached;
                }
                else
                {
                    if (kernel.Hugetlb.Alloc() is not { } fresh)
                        return VmFaultResult.Sigbus;
                    fresh.Mapping = mapping.Handle;
                    fresh.PgIndex = index;
                    mapping.AddOrGet(index, fresh);   // the page cache keeps the allocation's reference
                    folio = fresh;
                }
                folio.Get();
            }
            anon = false;
        }
        else
        {
            Memory.AnonVmaPrepare(vma);
            if (kernel.Hugetlb.Alloc() is not { } fresh)
                return VmFaultResult.Sigbus;
            folio = fresh;
            anon = true;
        }
        ulong entry = arch.PmdMkyoung(arch.PfnPmd(folio.Page().ToPfn(), vma.PageProt));
        if (write || vma.IsShared && (vma.Flags & VmFlags.Write) != 0)
            entry = arch.PmdMkdirty(entry);
        if ((vma.Flags & VmFlags.Write) != 0 && (vma.IsShared || write || anon))
            entry = arch.PmdMkwrite(entry);
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            if (slot != 0)
            {
                folio.Put();
                return VmFaultResult.None;
            }
            if (anon)
                Rmap.FolioAddNewAnonRmap(folio, vma, haddr, pmdMapped: true);
            else
                Rmap.FolioAddFileRmapPmd(folio, vma);
            slot = entry;
        }
        return VmFaultResult.None;
    }

    /// <summary>hugetlb_wp: reuse an exclusive anon huge page, else copy it.</summary>
    private static VmFaultResult HugetlbWp(ref VmFault vmf, Pfn pmdTable, ulong pmd)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var arch = mm.Arch;
        ulong haddr = vmf.Address & ~(Arch.PmdSize - 1);
        var old = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio;
        if (vma.IsShared || old.IsAnon && old.Page().AnonExclusive)
        {
            lock (mm.PageTableLock)
            {
                ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
                if (slot == pmd)
                    slot = arch.PmdMkwrite(arch.PmdMkdirty(arch.PmdMkyoung(pmd)));
            }
            return VmFaultResult.None;
        }
        Memory.AnonVmaPrepare(vma);
        if (mm.Kernel.Hugetlb.Alloc() is not { } folio)
            return VmFaultResult.Sigbus;
        for (int i = 0; i < folio.NrPages; i++)
            folio.Page(i).CopyDataFrom(old.Page(i));
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, haddr, haddr + Arch.PmdSize, null);
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            if (slot != pmd)
            {
                folio.Put();
                return VmFaultResult.None;
            }
            Rmap.FolioAddNewAnonRmap(folio, vma, haddr, pmdMapped: true);
            slot = arch.PmdMkwrite(arch.PmdMkdirty(arch.PmdMkyoung(arch.PfnPmd(folio.Page().ToPfn(), vma.PageProt))));
            Rmap.FolioRemoveRmapPmd(old, vma);
        }
        old.Put();
        return VmFaultResult.None;
    }

    public static void ZapHugePmd(Vma vma, Pfn pmdTable, ulong haddr)
    {
        var mm = vma.Mm;
        Folio folio;
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            ulong pmd = slot;
            slot = 0;
            if (pmd == 0)
                return;
            folio = mm.Kernel.Memmap.PfnToPage(mm.Arch.PmdPfn(pmd)).Folio;
            Rmap.FolioRemoveRmapPmd(folio, vma);
        }
        folio.Put();
    }

    /// <summary>copy_hugetlb_page_range for one huge PMD: shared pages are shared, private ones COW.</summary>
    public static void CopyHugePmd(Vma dst, Vma src, Pfn dpmdT, Pfn spmdT, ulong haddr)
    {
        var smm = src.Mm;
        var arch = smm.Arch;
        lock (smm.PageTableLock)
        {
            ref ulong sslot = ref smm.PmdRef(spmdT, haddr);
            ulong pmd = sslot;
            var folio = smm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio;
            folio.Get();
            if (folio.IsAnon)
            {
                for (int i = 0; i < folio.NrPages; i++)
                    folio.Page(i).Desc.Flags &= ~(uint)PageFlags.AnonExclusive;
                if (arch.PmdWrite(pmd))
                    sslot = pmd = arch.PmdWrprotect(pmd);
            }
            Rmap.FolioDupRmapPmd(folio, smm.Kernel);
            lock (dst.Mm.PageTableLock)
                dst.Mm.PmdRef(dpmdT, haddr) = pmd;
        }
    }
}
