namespace HmmSim.Kernel;

/// <summary>mm/huge_memory.c: PMD-mapped anonymous THPs and the huge zero folio.</summary>
internal static class HugeMemory
{
    /// <summary>thp_vma_allowable_order for the PMD order at a fault address: private anonymous memory,
    /// the machine's policy (always, or madvise with VM_HUGEPAGE; never VM_NOHUGEPAGE), and an aligned
    /// 2 MiB range wholly inside the VMA.</summary>
    public static bool ThpVmaAllowable(Vma vma, ulong addr)
    {
        if (!vma.IsAnonymous || vma.IsHugetlb || (vma.Flags & VmFlags.NoHugePage) != 0)
            return false;
        var policy = vma.Mm.Kernel.Config.Thp;
        if (policy == ThpPolicy.Never || policy == ThpPolicy.Madvise && (vma.Flags & VmFlags.HugePage) == 0)
            return false;
        return ThpRangeFits(vma, addr);
    }

    public static bool ThpRangeFits(Vma vma, ulong addr)
    {
        ulong haddr = addr & ~(Arch.PmdSize - 1);
        return haddr >= vma.Start && haddr + Arch.PmdSize <= vma.End;
    }

    public static bool IsHugeZeroPmd(KernelState kernel, ulong pmd) =>
        kernel.Arch.PmdPresent(pmd) && kernel.Arch.PmdPfn(pmd) == kernel.HugeZeroPfn;

    /// <summary>do_huge_pmd_anonymous_page: the huge zero folio for a read, a fresh THP for a write,
    /// VM_FAULT_FALLBACK when no 2 MiB block is free.</summary>
    public static VmFaultResult DoHugePmdAnonymousPage(ref VmFault vmf, Pfn pmdTable)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        ulong haddr = vmf.Address & ~(Arch.PmdSize - 1);
        if ((vmf.Flags & FaultFlags.Write) == 0)
        {
            ulong zero = arch.PfnPmd(MmGetHugeZeroFolio(kernel), vma.PageProt);
            lock (mm.PageTableLock)
            {
                ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
                if (slot == 0)
                    slot = zero;
            }
            return VmFaultResult.None;
        }
        Memory.AnonVmaPrepare(vma);
        if (Memory.AllocUserFolio(kernel, Arch.HpagePmdOrder) is not { } folio)
        {
            kernel.VmStat.Inc(VmStatItem.ThpFaultFallback);
            return VmFaultResult.Fallback;
        }
        ulong entry = arch.PmdMkyoung(arch.PfnPmd(folio.Page().ToPfn(), vma.PageProt));
        if ((vma.Flags & VmFlags.Write) != 0)
            entry = arch.PmdMkwrite(arch.PmdMkdirty(entry));
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            if (slot != 0)
            {
                folio.Put();
                return VmFaultResult.Retry;
            }
            Rmap.FolioAddNewAnonRmap(folio, vma, haddr, pmdMapped: true);
            slot = entry;
        }
        Interlocked.Add(ref mm.AnonRss, Arch.PtrsPerTable);
        kernel.VmStat.Inc(VmStatItem.ThpFaultAlloc);
        return VmFaultResult.None;
    }

    /// <summary>A fault on a present huge PMD: write-protect handling (do_huge_pmd_wp_page) or
    /// huge_pmd_set_accessed. Returns FALLBACK after splitting, to retry at PTE level.</summary>
    public static VmFaultResult HugePmdFault(ref VmFault vmf, Pfn pmdTable)
    {
        var vma = vmf.Vma;
        var mm = vma.Mm;
        var arch = mm.Arch;
        ulong haddr = vmf.Address & ~(Arch.PmdSize - 1);
        bool write = (vmf.Flags & (FaultFlags.Write | FaultFlags.Unshare)) != 0;
        ulong pmd = mm.PmdRef(pmdTable, haddr);
        if (write && !arch.PmdWrite(pmd))
        {
            if (!IsHugeZeroPmd(mm.Kernel, pmd) && vma.IsAnonymous)
            {
                var page = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd));
                var folio = page.Folio;
                if (page.AnonExclusive || folio.RefCount == 1 && folio.TryLock())
                {
                    bool reuse = page.AnonExclusive || folio.RefCount == 1;
                    if (!page.AnonExclusive)
                    {
                        if (reuse)
                        {
                            folio.Mapping = vma.AnonVma!.Handle;
                            for (int i = 0; i < folio.NrPages; i++)
                                folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags |= (uint)PageFlags.AnonExclusive;
                        }
                        folio.Unlock();
                    }
                    if (reuse)
                    {
                        lock (mm.PageTableLock)
                        {
                            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
                            if (slot == pmd)
                                slot = arch.PmdMkwrite(arch.PmdMkdirty(arch.PmdMkyoung(pmd)));
                        }
                        return VmFaultResult.None;
                    }
                }
            }
            // COW of a shared THP or of the huge zero folio: split and let the PTE fault copy one page.
            SplitHugePmd(vma, pmdTable, haddr);
            return VmFaultResult.Fallback;
        }
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            if (slot == pmd)
                slot = write ? arch.PmdMkdirty(arch.PmdMkyoung(pmd)) : arch.PmdMkyoung(pmd);
        }
        return VmFaultResult.None;
    }

    /// <summary>zap_huge_pmd.</summary>
    public static void ZapHugePmd(Vma vma, Pfn pmdTable, ulong haddr)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        Folio folio = default;
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            ulong pmd = slot;
            slot = 0;
            if (pmd == 0 || IsHugeZeroPmd(mm.Kernel, pmd))
                return;
            if (!arch.PmdPresent(pmd))
            {
                SwapFaults.ZapNonPresentPmd(vma, haddr, pmd);
                return;
            }
            var page = mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd));
            folio = page.Folio;
            Rmap.FolioRemoveRmapPmd(folio, vma);
            if (folio.MapCount < 0)
                VmWarn.Warn(mm.Kernel, $"WARN_ON_ONCE(folio_mapcount < 0): zap_huge_pmd: {folio}");
            if (page != folio.Page())
                ThrowHelper.KernelBug($"VM_BUG_ON_PAGE(!PageHead): zap_huge_pmd: {page} of {folio}");
            Interlocked.Add(ref mm.AnonRss, -Arch.PtrsPerTable);
        }
        folio.Put();
    }

    /// <summary>__split_huge_pmd: replace a huge PMD by a PTE table mapping the same pages with the
    /// same bits. The folio stays large (PTE-mapped); each PTE holds its own reference.</summary>
    public static void SplitHugePmd(Vma vma, Pfn pmdTable, ulong haddr)
    {
        var mm = vma.Mm;
        var kernel = mm.Kernel;
        var arch = mm.Arch;
        var table = mm.AllocTable();
        if (table.Value == ulong.MaxValue)
            ThrowHelper.KernelBug("split_huge_pmd: no memory for the PTE table (the kernel deposits one at fault time)");
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Clear, haddr, haddr + Arch.PmdSize, null);
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            ulong pmd = slot;
            if (pmd == 0 || arch.IsTable(pmd))
            {
                mm.FreeTable(table);
                return;
            }
            SplitHugePmdLockedChecks(vma, haddr);
            var ptes = mm.Table(table);
            if (!arch.PmdPresent(pmd))
            {
                SwapFaults.SplitNonPresentPmd(vma, pmd, ptes, haddr);
            }
            else if (IsHugeZeroPmd(kernel, pmd))
            {
                ulong z = arch.PteMkspecial(arch.PfnPte(kernel.ZeroPfn, vma.PageProt));
                ptes.Fill(z);
            }
            else
            {
                var folio = kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio;
                ulong proto = arch.PfnPte(folio.Page().ToPfn(), vma.PageProt);
                if (arch.PmdDirty(pmd))
                    proto = arch.PteMkdirty(proto);
                if (arch.PmdYoung(pmd))
                    proto = arch.PteMkyoung(proto);
                if (arch.PmdSoftDirty(pmd))
                    proto = arch.PteMksoftDirty(proto);
                proto = arch.PmdWrite(pmd) ? arch.PteMkwrite(proto) : arch.PteWrprotect(proto);
                var first = arch.PtePfn(proto);
                for (int i = 0; i < Arch.PtrsPerTable; i++)
                    ptes[i] = WithPfn(arch, proto, first.Add((ulong)i), vma);
                folio.GetMany(Arch.PtrsPerTable - 1);
                if (folio.IsAnon)
                    Rmap.FolioAddAnonRmapPtes(folio, folio.Page(), folio.NrPages, vma, exclusive: false);
                else
                    Rmap.FolioAddFileRmapPtes(folio, folio.Page(), folio.NrPages, vma);
                Rmap.FolioRemoveRmapPmd(folio, vma);
            }
            slot = arch.MkTable(table);
        }
        kernel.VmStat.Inc(VmStatItem.ThpSplitPmd);
    }

    private static ulong WithPfn(Arch arch, ulong proto, Pfn pfn, Vma vma)
    {
        ulong e = arch.PfnPte(pfn, vma.PageProt);
        if (arch.PteDirty(proto))
            e = arch.PteMkdirty(e);
        if (arch.PteYoung(proto))
            e = arch.PteMkyoung(e);
        if (arch.PteSoftDirty(proto))
            e = arch.PteMksoftDirty(e);
        return arch.PteWrite(proto) ? arch.PteMkwrite(e) : arch.PteWrprotect(e);
    }

    /// <summary>copy_huge_pmd (fork). False means the PMD was split and the PTEs must be copied instead.</summary>
    /// <summary>__split_huge_pmd_locked's VM_BUG_ONs: the range split is one whole, aligned PMD inside the VMA.</summary>
    private static void SplitHugePmdLockedChecks(Vma vma, ulong haddr)
    {
        if ((haddr & (Arch.PmdSize - 1)) != 0)
            ThrowHelper.KernelBug($"VM_BUG_ON(haddr & ~HPAGE_PMD_MASK): __split_huge_pmd_locked: 0x{haddr:x} in {vma}");
        if (vma.Start > haddr)
            ThrowHelper.KernelBug($"VM_BUG_ON_VMA(vm_start > haddr): __split_huge_pmd_locked: 0x{haddr:x} in {vma}");
        if (vma.End < haddr + Arch.PmdSize)
            ThrowHelper.KernelBug($"VM_BUG_ON_VMA(vm_end < haddr + HPAGE_PMD_SIZE): __split_huge_pmd_locked: 0x{haddr:x} in {vma}");
    }

    public static bool CopyHugePmd(Vma dst, Vma src, Pfn dpmdT, Pfn spmdT, ulong haddr)
    {
        var smm = src.Mm;
        var dmm = dst.Mm;
        var arch = smm.Arch;
        lock (smm.PageTableLock)
        {
            ref ulong sslot = ref smm.PmdRef(spmdT, haddr);
            ulong pmd = sslot;
            if (!arch.PmdPresent(pmd))
            {
                ulong child = SwapFaults.CopyNonPresentPmd(dst, src, ref sslot, haddr);
                lock (dmm.PageTableLock)
                    dmm.PmdRef(dpmdT, haddr) = child;
                return true;
            }
            if (IsHugeZeroPmd(smm.Kernel, pmd))
            {
                lock (dmm.PageTableLock)
                    dmm.PmdRef(dpmdT, haddr) = pmd;
                return true;
            }
            var folio = smm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio;
            if (folio.IsAnon && folio.Page().AnonExclusive && Fork.FolioMaybeDmaPinned(folio))
                goto split;
            if (folio.IsAnon)
                for (int i = 0; i < folio.NrPages; i++)
                    folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive).Flags &= ~(uint)PageFlags.AnonExclusive;
            folio.Get();
            Rmap.FolioDupRmapPmd(folio, smm.Kernel);
            Interlocked.Add(ref dmm.AnonRss, Arch.PtrsPerTable);
            if (arch.PmdWrite(pmd))
                sslot = pmd = arch.PmdWrprotect(pmd);
            lock (dmm.PageTableLock)
                dmm.PmdRef(dpmdT, haddr) = arch.PmdMkold(pmd);
            return true;
        }
    split:
        SplitHugePmd(src, spmdT, haddr);
        return false;
    }

    /// <summary>change_huge_pmd (mprotect of a whole PMD).</summary>
    public static void ChangeHugePmd(Vma vma, Pfn pmdTable, ulong haddr, ulong newProt, bool tryWritable)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        lock (mm.PageTableLock)
        {
            ref ulong slot = ref mm.PmdRef(pmdTable, haddr);
            ulong pmd = slot;
            if (!arch.PmdPresent(pmd))
            {
                slot = SwapFaults.ChangeNonPresentPmd(vma, pmd);
                return;
            }
            bool zero = IsHugeZeroPmd(mm.Kernel, pmd);
            ulong e = arch.PmdModify(pmd, newProt);
            if (tryWritable && !zero && !arch.PmdWrite(e) && arch.PmdDirty(e)
                && mm.Kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).AnonExclusive)
                e = arch.PmdMkwrite(e);
            slot = e;
        }
    }

    /// <summary>split_folio to order 0 of a locked large folio (with <paramref name="unmappedMigration"/>,
    /// folio_split_unmapped for a folio under migration) the caller holds one reference on:
    /// PMD mappings (present, migration or device-private) become PTE mappings, then every page
    /// becomes its own folio keeping its mappings, rmap and data. Fails with EAGAIN when unexpected
    /// references (pins) exist, as can_split_folio does. ZONE_DEVICE folios tell their pagemap
    /// through folio_split for each new folio, then once with no tail.</summary>
    public static Errno SplitFolio(KernelState kernel, Folio folio, bool unmappedMigration = false)
    {
        if (!folio.IsLarge)
            return Errno.None;
        if (folio.IsHugetlb || folio.IsZero)
            return Errno.EINVAL;
        if (!folio.IsLocked)
            ThrowHelper.KernelBug($"split_folio of unlocked {folio}");
        int cacheRef = !folio.IsAnon && !folio.IsZoneDevice && folio.Mapping != 0 ? 1 : 0;
        if (folio.PinCount > 0 || folio.RefCount != folio.MapCount + 1 + cacheRef)
            return Errno.EAGAIN;
        if (folio.EntireMapCount > 0)
        {
            // unmap_folio's rmap walk, under the anon_vma lock until every PMD it found is split.
            var rmapLock = Rmap.WalkLock(folio);
            rmapLock?.Enter();
            try
            {
                foreach (var m in Rmap.Walk(folio))
                {
                    var mm = m.Vma.Mm;
                    if (m.Address < m.Vma.Start || !mm.PmdTable(m.Address, alloc: false, out var pmdTable))
                        continue;
                    ulong pmd = mm.PmdRef(pmdTable, m.Address);
                    if (pmd != 0 && !mm.Arch.IsTable(pmd) && PmdMapsFolio(kernel, pmd, folio))
                        SplitHugePmd(m.Vma, pmdTable, m.Address);
                }
            }
            finally
            {
                rmapLock?.Exit();
            }
            if (folio.EntireMapCount != 0)
                ThrowHelper.KernelBug($"split_folio: {folio} is still PMD-mapped {folio.EntireMapCount} times after splitting every PMD the rmap found");
        }
        var pgmap = folio.Pgmap;
        int nr = folio.NrPages;
        uint mapping = folio.Mapping;
        ulong index = folio.PgIndex;
        uint keep = folio.HeadFor(PageField.Flags, false, PageFlags.Anon | PageFlags.SwapBacked | PageFlags.Dirty | PageFlags.Uptodate).Flags & (uint)(PageFlags.Anon | PageFlags.SwapBacked | PageFlags.Dirty | PageFlags.Uptodate);
        for (int i = nr - 1; i >= 0; i--)
        {
            // __split_folio_to_order rewrites every word of each new folio's struct page.
            ref var d = ref folio.Page(i).DescFor(PageField.Flags, true, PageFlags.AnonExclusive | PageFlags.Locked | PageFlags.Head | PageFlags.Tail);
            DevicePageCensus.Note(folio.Section, folio.Index + i, PageField.MapCount, true);
            DevicePageCensus.Note(folio.Section, folio.Index + i, PageField.RefCount, true);
            DevicePageCensus.Note(folio.Section, folio.Index + i, PageField.Mapping, true);
            // clear_compound_head zeroes the word a PageUnion pgmap shared: it stays lost (PgmapOverwritten).
            uint exclusive = d.Flags & (uint)(PageFlags.AnonExclusive | PageFlags.PgmapOverwritten);
            int mapcount = d.MapCount, data = d.Private;
            // page->private is carried only when the page has one (never a device-private page).
            if (data != 0)
                DevicePageCensus.Note(folio.Section, folio.Index + i, PageField.Private, true);
            d = default;
            // A folio being migrated (folio_split_unmapped) hands every new folio to the migration
            // locked and referenced, as the head was; otherwise tails keep just their mappings' references.
            bool asHead = i == 0 || unmappedMigration;
            d.Flags = keep | exclusive | (asHead ? (uint)PageFlags.Locked : 0);
            d.MapCount = mapcount;
            d.Private = data;
            d.Mapping = mapping;
            // Every new folio starts with one reference beside its mappings' (folio_ref_unfreeze); tails
            // not kept for a migration drop it below, so a tail nobody maps is freed at once.
            // Published last (a release store): whoever gets a reference now also sees the lock bit.
            Volatile.Write(ref d.RefCount, mapcount + 1 + (i == 0 ? cacheRef : 0));
            var f = folio.Page(i).Folio;
            f.PgIndex = index + (ulong)i;
            if (i > 0 && pgmap?.Type == MemoryType.DevicePrivate)
                pgmap.Ops.FolioSplit?.Invoke(folio, f);
        }
        if (pgmap?.Type == MemoryType.DevicePrivate)
            pgmap.Ops.FolioSplit?.Invoke(folio, default);
        if (!folio.IsZoneDevice)
            kernel.VmStat.Inc(VmStatItem.ThpSplitPage);
        if (!unmappedMigration)
        {
            // __folio_split's last loop: free_folio_and_swap_cache on every tail.
            for (int i = 1; i < nr; i++)
                folio.Page(i).Folio.Put();
        }
        return Errno.None;
    }

    /// <summary>Whether a PMD leaf (present, migration or device-private) maps <paramref name="folio"/>.</summary>
    private static bool PmdMapsFolio(KernelState kernel, ulong pmd, Folio folio)
    {
        var arch = kernel.Arch;
        if (arch.PmdPresent(pmd))
            return !IsHugeZeroPmd(kernel, pmd) && kernel.Memmap.PfnToPage(arch.PmdPfn(pmd)).Folio == folio;
        var entry = arch.PmdToSwpEntry(pmd);
        return kernel.Swapops.SoftleafHasPfn(entry) && kernel.Swapops.SoftleafToFolio(entry) == folio;
    }

    /// <summary>mm_get_huge_zero_folio: made on first use and kept for the life of the machine.</summary>
    internal static Pfn MmGetHugeZeroFolio(KernelState kernel)
    {
        if (Interlocked.Read(ref kernel.HugeZeroPfnValue) is var v and >= 0)
            return new Pfn((ulong)v);
        lock (kernel.Memmap)
        {
            if (kernel.HugeZeroPfnValue >= 0)
                return new Pfn((ulong)kernel.HugeZeroPfnValue);
            var page = kernel.Buddy.Alloc(Arch.HpagePmdOrder, compound: true);
            if (page.IsNull)
                ThrowHelper.KernelBug("no memory for the huge zero folio");
            page.Desc.Flags |= (uint)(PageFlags.Zero | PageFlags.Reserved);
            kernel.VmStat.Inc(VmStatItem.ThpZeroPageAlloc);
            Interlocked.Exchange(ref kernel.HugeZeroPfnValue, (long)page.ToPfn().Value);
            return page.ToPfn();
        }
    }
}
