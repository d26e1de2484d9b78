namespace HmmSim.Kernel;

/// <summary>mm/memory.c: the fault handler (handle_mm_fault and what it dispatches to) for PTE-level
/// mappings. PMD-level (THP, hugetlb) faults are in HugeMemory and Hugetlb; non-present entries
/// (migration, device-private, device-exclusive) in SwapFaults.</summary>
internal static partial class Memory
{
    /// <summary>handle_mm_fault: the single entry for CPU faults, GUP and HMM. The caller holds
    /// mmap_lock for read and has checked the access against the VMA.</summary>
    public static VmFaultResult HandleMmFault(Vma vma, ulong address, FaultFlags flags)
    {
        var kernel = vma.Mm.Kernel;
        kernel.VmStat.Inc(VmStatItem.PgFault);
        var vmf = new VmFault(vma, address & Arch.PageMask, flags);
        if (vma.IsHugetlb)
            return Hugetlb.HugetlbFault(ref vmf);
        return HandleFault(ref vmf);
    }

    /// <summary>__handle_mm_fault: allocate the upper levels, try a huge PMD, then the PTE.</summary>
    private static VmFaultResult HandleFault(ref VmFault vmf)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        ulong addr = vmf.Address;
        if (!mm.PmdTable(addr, alloc: true, out var pmdTable))
            return VmFaultResult.Oom;
        ulong pmd = mm.PmdRef(pmdTable, addr);
        if (pmd == 0 && HugeMemory.ThpVmaAllowable(vma, addr))
        {
            var ret = HugeMemory.DoHugePmdAnonymousPage(ref vmf, pmdTable);
            if ((ret & VmFaultResult.Fallback) == 0)
                return ret;
            pmd = mm.PmdRef(pmdTable, addr);
        }
        else if (pmd != 0 && !mm.Arch.IsTable(pmd))
        {
            if (mm.Arch.PmdPresent(pmd))
            {
                var ret = HugeMemory.HugePmdFault(ref vmf, pmdTable);
                if ((ret & VmFaultResult.Fallback) == 0)
                    return ret;
            }
            else
            {
                return SwapFaults.DoHugePmdNonPresent(ref vmf, pmdTable);
            }
        }
        if (!mm.PteTable(pmdTable, addr, alloc: true, out var pteTable))
        {
            // The PMD became a leaf under us (a racing THP fault): let the caller retry.
            return mm.Arch.IsTable(mm.PmdRef(pmdTable, addr)) ? VmFaultResult.Oom : VmFaultResult.Retry;
        }
        return HandlePteFault(ref vmf, pteTable);
    }

    /// <summary>handle_pte_fault.</summary>
    private static VmFaultResult HandlePteFault(ref VmFault vmf, Pfn pteTable)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var arch = mm.Arch;
        ulong pte = mm.PteRef(pteTable, vmf.Address);
        vmf.OrigPte = pte;
        bool write = (vmf.Flags & (FaultFlags.Write | FaultFlags.Unshare)) != 0;
        if (pte == 0)
        {
            if (vma.IsAnonymous)
                return DoAnonymousPage(ref vmf, pteTable);
            return DoFault(ref vmf, pteTable);
        }
        if (!arch.PtePresent(pte))
            return SwapFaults.DoSwapPage(ref vmf, pteTable);
        if (arch.PteProtNone(pte))
            return VmFaultResult.Sigsegv;   // NUMA hinting is not modelled; PROT_NONE is refused before here
        if (write && !arch.PteWrite(pte))
            return DoWpPage(ref vmf, pteTable);
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, vmf.Address);
            if (slot == pte)
            {
                ulong e = arch.PteMkyoung(slot);
                if (write)
                    e = arch.PteMkdirty(e);
                slot = e;
            }
        }
        return VmFaultResult.None;
    }

    /// <summary>anon_vma_prepare: the VMA gets its anon_vma before its first anonymous folio.</summary>
    public static void AnonVmaPrepare(Vma vma)
    {
        if (vma.AnonVma is not null)
            return;
        lock (vma.Mm.PageTableLock)
        {
            if (vma.AnonVma is not null)
                return;
            var av = new AnonVma(vma.Mm.Kernel.Memmap);
            av.Link(vma);
            vma.AnonVma = av;
        }
    }

    /// <summary>vma_alloc_folio for user memory: a zeroed (never-written) folio, or null on OOM.</summary>
    public static Folio? AllocUserFolio(KernelState kernel, int order)
    {
        var page = kernel.Buddy.Alloc(order, compound: order > 0);
        return page.IsNull ? null : page.Folio;
    }

    /// <summary>do_anonymous_page: a read maps the shared zero page; a write gets a fresh folio.</summary>
    private static VmFaultResult DoAnonymousPage(ref VmFault vmf, Pfn pteTable)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        ulong addr = vmf.Address;
        if ((vmf.Flags & FaultFlags.Write) == 0)
        {
            ulong zeroPte = arch.PteMkspecial(arch.PfnPte(kernel.ZeroPfn, vma.PageProt));
            lock (mm.PageTableLock)
            {
                ref ulong slot = ref mm.PteRef(pteTable, addr);
                if (slot == 0)
                    slot = zeroPte;
            }
            return VmFaultResult.None;
        }
        AnonVmaPrepare(vma);
        if (AllocUserFolio(kernel, 0) is not { } folio)
            return VmFaultResult.Oom;
        ulong entry = arch.PfnPte(folio.Page().ToPfn(), vma.PageProt);
        entry = arch.PteMkyoung(entry);
        if ((vma.Flags & VmFlags.Write) != 0)
            entry = arch.PteMkwrite(arch.PteMkdirty(entry));
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, addr);
            if (slot != 0)
            {
                folio.Put();   // somebody else faulted it in first
                return VmFaultResult.None;
            }
            Rmap.FolioAddNewAnonRmap(folio, vma, addr, pmdMapped: false);
            slot = entry;
        }
        Interlocked.Increment(ref mm.AnonRss);
        return VmFaultResult.None;
    }

    /// <summary>vm_normal_page: the page a present PTE maps, or a null page for special mappings
    /// (the zero page, raw PFN maps) that have no rmap and take no references.</summary>
    public static Page VmNormalPage(Vma vma, ulong pte)
    {
        var arch = vma.Mm.Arch;
        if (arch.PteSpecial(pte))
            return default;
        return vma.Mm.Kernel.Memmap.PfnToPage(arch.PtePfn(pte));
    }

    /// <summary>do_wp_page: a write to a present, write-protected PTE.</summary>
    private static VmFaultResult DoWpPage(ref VmFault vmf, Pfn pteTable)
    {
        var vma = vmf.Vma;
        var page = VmNormalPage(vma, vmf.OrigPte);
        if ((vma.Flags & (VmFlags.Shared | VmFlags.MayShare)) != 0 && (vma.Flags & VmFlags.Shared) != 0)
        {
            // wp_page_shared: shmem needs no page_mkwrite; just make it writable and dirty.
            WpPageReuse(ref vmf, pteTable);
            return VmFaultResult.None;
        }
        if (!page.IsNull)
        {
            var folio = page.Folio;
            if (folio.IsAnon && WpCanReuseAnonFolio(folio, page, vma))
            {
                WpPageReuse(ref vmf, pteTable);
                return VmFaultResult.None;
            }
        }
        return WpPageCopy(ref vmf, pteTable, page);
    }

    /// <summary>wp_can_reuse_anon_folio: a page marked exclusive, or an order-0 folio whose only reference
    /// is this mapping, can be written in place. Large folios are reused only when the page is exclusive.</summary>
    private static bool WpCanReuseAnonFolio(Folio folio, Page page, Vma vma)
    {
        if (page.AnonExclusive)
            return true;
        if (folio.IsLarge || folio.IsZoneDevice)
            return false;
        if (folio.RefCount != 1 || !folio.TryLock())
            return false;
        try
        {
            if (folio.RefCount != 1)
                return false;
            // folio_move_anon_rmap: it is ours alone now, so file it under our anon_vma.
            AnonVmaPrepare(vma);
            folio.Mapping = vma.AnonVma!.Handle;
            page.DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags |= (uint)PageFlags.AnonExclusive;
            return true;
        }
        finally
        {
            folio.Unlock();
        }
    }

    /// <summary>wp_page_reuse: writable, dirty and young, same page.</summary>
    private static bool WpPageReuse(ref VmFault vmf, Pfn pteTable)
    {
        var mm = vmf.Vma.Mm;
        var arch = mm.Arch;
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, vmf.Address);
            if (slot != vmf.OrigPte)
                return false;
            ulong e = arch.PteMkyoung(arch.PteMkdirty(slot));
            if ((vmf.Vma.Flags & VmFlags.Write) != 0)
                e = arch.PteMkwrite(e);
            slot = e;
            return true;
        }
    }

    /// <summary>wp_page_copy: break COW into a fresh anonymous folio (zeroed for the zero page).</summary>
    private static VmFaultResult WpPageCopy(ref VmFault vmf, Pfn pteTable, Page oldPage)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        AnonVmaPrepare(vma);
        if (AllocUserFolio(kernel, 0) is not { } folio)
            return VmFaultResult.Oom;
        var newPage = folio.Page();
        if (!oldPage.IsNull)
            newPage.CopyDataFrom(oldPage);
        ulong entry = arch.PteMkyoung(arch.PteMkdirty(arch.PfnPte(newPage.ToPfn(), vma.PageProt)));
        if ((vma.Flags & VmFlags.Write) != 0)
            entry = arch.PteMkwrite(entry);
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, vmf.Address, vmf.Address + Arch.PageSize, null);
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, vmf.Address);
            if (slot != vmf.OrigPte)
            {
                folio.Put();
                return VmFaultResult.None;
            }
            if (!oldPage.IsNull)
            {
                var old = oldPage.Folio;
                if (!old.IsAnon)
                {
                    DecRss(mm, old);
                    Interlocked.Increment(ref mm.AnonRss);
                }
                Rmap.FolioAddNewAnonRmap(folio, vma, vmf.Address, pmdMapped: false);
                slot = entry;
                Rmap.FolioRemoveRmapPtes(old, oldPage, 1, vma);
                old.Put();
            }
            else
            {
                Rmap.FolioAddNewAnonRmap(folio, vma, vmf.Address, pmdMapped: false);
                Interlocked.Increment(ref mm.AnonRss);
                slot = entry;
            }
        }
        kernel.VmStat.Inc(VmStatItem.CowFaults);
        return VmFaultResult.None;
    }

    /// <summary>do_fault: a file-backed (shmem, device file) PTE fault.</summary>
    private static VmFaultResult DoFault(ref VmFault vmf, Pfn pteTable)
    {
        var vma = vmf.Vma;
        if (vma.Ops is { } ops)
            return ops.Fault(vmf);
        var mapping = vma.File!;
        ulong index = vma.LinearPageIndex(vmf.Address);
        bool write = (vmf.Flags & FaultFlags.Write) != 0;
        var result = Shmem.GetFolio(vma.Mm.Kernel, mapping, index, out var folio);
        if (result != VmFaultResult.None)
            return result;
        try
        {
            if (write && !vma.IsShared)
                return DoCowFault(ref vmf, pteTable, folio.Page());
            return FinishFault(ref vmf, pteTable, folio, write);
        }
        finally
        {
            folio.Put();   // the reference shmem_get_folio returned
        }
    }

    /// <summary>finish_fault / set_pte_range for a page-cache folio.</summary>
    private static VmFaultResult FinishFault(ref VmFault vmf, Pfn pteTable, Folio folio, bool write)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var arch = mm.Arch;
        ulong entry = arch.PteMkyoung(arch.PfnPte(folio.Page().ToPfn(), vma.PageProt));
        if (write)
            entry = arch.PteMkdirty(entry);
        if (write && (vma.Flags & VmFlags.Write) != 0)
            entry = arch.PteMkwrite(entry);
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, vmf.Address);
            if (slot != 0)
                return VmFaultResult.None;
            folio.Get();
            Rmap.FolioAddFileRmapPtes(folio, folio.Page(), 1, vma);
            Interlocked.Increment(ref mm.ShmemRss);
            slot = entry;
        }
        return VmFaultResult.None;
    }

    /// <summary>do_cow_fault: a write to a private file mapping copies the page into anon memory.</summary>
    private static VmFaultResult DoCowFault(ref VmFault vmf, Pfn pteTable, Page filePage)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var arch = mm.Arch;
        AnonVmaPrepare(vma);
        if (AllocUserFolio(mm.Kernel, 0) is not { } folio)
            return VmFaultResult.Oom;
        folio.Page().CopyDataFrom(filePage);
        ulong entry = arch.PteMkwrite(arch.PteMkdirty(arch.PteMkyoung(arch.PfnPte(folio.Page().ToPfn(), vma.PageProt))));
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, vmf.Address);
            if (slot != 0)
            {
                folio.Put();
                return VmFaultResult.None;
            }
            Rmap.FolioAddNewAnonRmap(folio, vma, vmf.Address, pmdMapped: false);
            Interlocked.Increment(ref mm.AnonRss);
            slot = entry;
        }
        return VmFaultResult.None;
    }

    public static void DecRss(MmStruct mm, Folio folio)
    {
        if (folio.IsAnon)
            Interlocked.Decrement(ref mm.AnonRss);
        else
            Interlocked.Decrement(ref mm.ShmemRss);
    }
}

internal static partial class Memory
{
    /// <summary>vm_insert_page: a normal (not special) PTE for a kernel page, with a file rmap and a
    /// reference of its own; EBUSY if something is mapped there already.</summary>
    public static Errno VmInsertPage(Vma vma, ulong addr, Page page)
    {
        ArgumentNullException.ThrowIfNull(vma);
        if (page.IsNull || addr < vma.Start || addr >= vma.End || (addr & ~Arch.PageMask) != 0)
            return Errno.EFAULT;
        if ((vma.Flags & VmFlags.MixedMap) == 0)
            vma.Flags |= VmFlags.MixedMap;   // the first insert makes it a mixed map, as the kernel does
        var mm = vma.Mm;
        var arch = mm.Arch;
        Pfn pteTable = default;
        if (!mm.PmdTable(addr, alloc: true, out var pmdTable) || !mm.PteTable(pmdTable, addr, alloc: true, out pteTable))
            return Errno.ENOMEM;
        var folio = page.Folio;
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PteRef(pteTable, addr);
            if (slot != 0)
                return Errno.EBUSY;
            folio.Get();
            Interlocked.Increment(ref mm.ShmemRss);
            Rmap.FolioAddFileRmapPtes(folio, page, 1, vma);
            slot = arch.PfnPte(page.ToPfn(), vma.PageProt);
        }
        return Errno.None;
    }
}
