namespace HmmSim;

/// <summary>The dmirror character device's mmap (dmirror_fops_mmap): every page of the VMA gets a
/// zeroed kernel page inserted with vm_insert_page. The VMA has no fault handler: a page zapped
/// later (MADV_DONTNEED) faults with SIGBUS, as a mixed map without vm_ops->fault does.</summary>
internal sealed class DmirrorFileOps : IVmOperations
{
    public static readonly DmirrorFileOps Instance = new();

    public VmFaultResult Fault(VmFault vmf) => VmFaultResult.Sigbus;

    public static Errno Mmap(MmStruct mm, ulong addr, ulong length, Prot prot, MapFlags flags, ulong offset, out ulong mapped)
    {
        mapped = 0;
        if ((offset & (Arch.PageSize - 1)) != 0 || length == 0 || ((uint)prot & ~7u) != 0)
            return Errno.EINVAL;
        if ((flags & (MapFlags.Anonymous | MapFlags.Hugetlb)) != 0 || (flags & (MapFlags.Shared | MapFlags.Private)) == 0)
            return Errno.EINVAL;
        ulong len = (length + Arch.PageSize - 1) & VirtAddr.PageMask;
        if (len == 0)
            return Errno.ENOMEM;
        var err = HmmSim.Mmap.GetUnmappedArea(mm, addr, len, Arch.PageSize, (flags & (MapFlags.Fixed | MapFlags.FixedNoReplace)) != 0, out ulong start);
        if (err != Errno.None)
            return err;
        if ((flags & (MapFlags.Fixed | MapFlags.FixedNoReplace)) != 0)
        {
            if ((flags & MapFlags.FixedNoReplace) != 0 && mm.Vmas.Range(start, start + len).Count > 0)
                return Errno.EEXIST;
            err = HmmSim.Mmap.DoMunmap(mm, start, len);
            if (err != Errno.None)
                return err;
        }
        var vmFlags = HmmSim.Mmap.CalcVmProtBits(prot) | VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec | VmFlags.MixedMap;
        if ((flags & MapFlags.Shared) != 0)
            vmFlags |= VmFlags.Shared | VmFlags.MayShare;
        var vma = new Vma(mm, start, start + len, vmFlags, offset >> Arch.PageShift, null) { Ops = Instance };
        mm.Vmas.Insert(vma);
        for (ulong a = start; a < start + len; a += Arch.PageSize)
        {
            var page = mm.Kernel.Buddy.Alloc(0, compound: false);
            if (page.IsNull)
                return Errno.ENOMEM;
            VmInsertPage(vma, a, page);
            page.Folio.Put();   // the mapping keeps its own reference
        }
        mapped = start;
        return Errno.None;
    }

    /// <summary>vm_insert_page: a normal (not special) PTE for a kernel page, with a file rmap and a reference.</summary>
    private static void VmInsertPage(Vma vma, ulong addr, Page page)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        Pfn pteTable = default;
        if (!mm.PmdTable(addr, alloc: true, out var pmdTable) || !mm.PteTable(pmdTable, addr, alloc: true, out pteTable))
            ThrowHelper.KernelBug("vm_insert_page: no memory for page tables");
        var folio = page.Folio;
        lock (mm.PageTableLock)
        {
            folio.Get();
            Interlocked.Increment(ref mm.ShmemRss);
            Rmap.FolioAddFileRmapPtes(folio, page, 1, vma);
            mm.PteRef(pteTable, addr) = arch.PfnPte(page.ToPfn(), vma.PageProt);
        }
    }
}
