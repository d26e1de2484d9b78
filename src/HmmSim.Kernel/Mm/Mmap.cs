namespace HmmSim.Kernel;

/// <summary>mm/mmap.c and mm/vma.c: do_mmap, get_unmapped_area, do_vmi_munmap, VMA split and merge,
/// exit_mmap. Callers hold mmap_lock for write.</summary>
internal static class Mmap
{
    public const int MaxMapCount = 65530;   // sysctl_max_map_count
    public const ulong MmapMinAddr = 0x10000;   // vm.mmap_min_addr

    public static VmFlags CalcVmProtBits(Prot prot) =>
        ((prot & Prot.Read) != 0 ? VmFlags.Read : 0) | ((prot & Prot.Write) != 0 ? VmFlags.Write : 0) | ((prot & Prot.Exec) != 0 ? VmFlags.Exec : 0);

    /// <summary>MAP_TYPE: the mapping type is the low nibble, compared as a whole.</summary>
    public const MapFlags MapType = (MapFlags)0x0f;
    /// <summary>MAP_SHARED_VALIDATE: shared, with every other flag checked against what the file supports.</summary>
    public const MapFlags MapSharedValidate = MapFlags.Shared | MapFlags.Private;
    /// <summary>MAP_DROPPABLE (6.11): an anonymous type the model does not implement.</summary>
    public const MapFlags MapDroppable = (MapFlags)0x08;
    /// <summary>LEGACY_MAP_MASK (include/linux/mman.h): the flags MAP_SHARED_VALIDATE accepts from every file
    /// (SHARED, PRIVATE, FIXED, ANONYMOUS, DENYWRITE, EXECUTABLE, UNINITIALIZED, GROWSDOWN, LOCKED,
    /// NORESERVE, POPULATE, NONBLOCK, STACK, HUGETLB). MAP_FIXED_NOREPLACE and MAP_SYNC are not in it.</summary>
    public const MapFlags LegacyMapMask = (MapFlags)(0x01 | 0x02 | 0x10 | 0x20 | 0x0800 | 0x1000 | 0x4000000
        | 0x0100 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x40000);

    /// <summary>round_hint_to_min: a hint is masked to its page and raised to mmap_min_addr (do_mmap, every
    /// arch, before get_unmapped_area sees it).</summary>
    public static ulong RoundHintToMin(ulong hint)
    {
        hint &= Arch.PageMask;
        return hint != 0 && hint < MmapMinAddr ? MmapMinAddr : hint;
    }

    /// <summary>file_mmap_ok: the mapping's last byte must fit the file's maximum size (MAX_LFS_FILESIZE for a
    /// regular file, ULONG_MAX for a character device).</summary>
    public static bool FileMmapOk(ulong maxSize, ulong pgoff, ulong len) =>
        len <= maxSize && pgoff <= (maxSize - len) >> Arch.PageShift;

    /// <summary>MAX_LFS_FILESIZE: what file_mmap_size_max allows a regular (tmpfs) file.</summary>
    public const ulong MaxLfsFileSize = long.MaxValue;

    /// <summary>do_mmap (with ksys_mmap_pgoff's checks in front), in the kernel's order.</summary>
    public static Errno DoMmap(MmStruct mm, ulong addr, ulong len, Prot prot, MapFlags flags, AddressSpace? file, ulong offset, out ulong mapped)
    {
        mapped = 0;
        var kernel = mm.Kernel;
        if ((offset & (Arch.PageSize - 1)) != 0)
            return Errno.EINVAL;
        // do_mmap does not validate prot: calc_vm_prot_bits drops bits it does not know.
        ulong pgoff = offset >> Arch.PageShift;
        bool anonymous = (flags & MapFlags.Anonymous) != 0;
        bool hugetlb = (flags & MapFlags.Hugetlb) != 0;
        // ksys_mmap_pgoff: MAP_ANONYMOUS never looks at the fd; without it the fd must be open.
        if (anonymous)
            file = null;
        else if (file is null)
            return Errno.EBADF;
        if (hugetlb && !anonymous)
            return Errno.EINVAL;   // the model has no hugetlbfs mount to name a file on
        if (hugetlb)
            len = (len + Arch.PmdSize - 1) & ~(Arch.PmdSize - 1);
        if (len == 0)
            return Errno.EINVAL;
        if ((flags & MapFlags.FixedNoReplace) != 0)
            flags |= MapFlags.Fixed;
        if ((flags & MapFlags.Fixed) == 0)
            addr = RoundHintToMin(addr);
        ulong alignedLen = (len + Arch.PageSize - 1) & Arch.PageMask;
        if (alignedLen == 0 || alignedLen < len)
            return Errno.ENOMEM;
        len = alignedLen;
        if (pgoff + (len >> Arch.PageShift) < pgoff)
            return Errno.EOVERFLOW;
        if (mm.Vmas.Count > MaxMapCount)
            return Errno.ENOMEM;
        var type = flags & MapType;
        ulong align = hugetlb || anonymous && type == MapFlags.Private && (len & (Arch.PmdSize - 1)) == 0 ? Arch.PmdSize : Arch.PageSize;
        var err = GetUnmappedArea(mm, addr, len, align, (flags & MapFlags.Fixed) != 0, out addr);
        if (err != Errno.None)
            return err;
        if (hugetlb && (addr & (Arch.PmdSize - 1)) != 0)
            return Errno.EINVAL;
        if ((flags & MapFlags.FixedNoReplace) != 0 && mm.Vmas.Range(addr, addr + len).Count > 0)
            return Errno.EEXIST;
        if (file is not null)
        {
            if (!FileMmapOk(MaxLfsFileSize, pgoff, len))
                return Errno.EOVERFLOW;
            // The `flags & MAP_TYPE` switch: shmem supports no flag beyond the legacy ones.
            if (type == MapFlags.Shared)
                flags &= LegacyMapMask;
            else if (type == MapSharedValidate && (flags & ~LegacyMapMask) != 0)
                return Errno.EOPNOTSUPP;
            else if (type != MapSharedValidate && type != MapFlags.Private)
                return Errno.EINVAL;
        }
        else if (type == MapDroppable)
        {
            return Errno.EOPNOTSUPP;   // VM_DROPPABLE is not modelled (docs/fidelity.md)
        }
        else if (type != MapFlags.Shared && type != MapFlags.Private)
        {
            return Errno.EINVAL;
        }
        var vmFlags = CalcVmProtBits(prot) | VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec;
        if (type == MapSharedValidate)
            type = MapFlags.Shared;
        if (type == MapFlags.Shared)
            vmFlags |= VmFlags.Shared | VmFlags.MayShare;
        if (hugetlb)
            vmFlags |= VmFlags.Hugetlb | VmFlags.DontExpand;
        if (file is not null && file.Size < offset)
            pgoff = offset >> Arch.PageShift;   // mapping past EOF is allowed; faults there SIGBUS
        // mmap_region: whatever was there goes first.
        if ((flags & MapFlags.Fixed) != 0)
        {
            err = DoMunmap(mm, addr, len);
            if (err != Errno.None)
                return err;
        }
        if (anonymous && type == MapFlags.Shared || hugetlb)
        {
            file = hugetlb ? new AddressSpace(kernel.Memmap, len, hugetlb: true) : Shmem.ZeroSetup(kernel, len);
            pgoff = 0;
        }
        else if (anonymous)
        {
            pgoff = addr >> Arch.PageShift;
        }
        if (file is not null)
            Shmem.FileGet(file);
        var vma = new Vma(mm, addr, addr + len, vmFlags, pgoff, file);
        file?.MmapAdd(vma);
        mm.Vmas.Insert(vma);
        if (anonymous && type == MapFlags.Private && !hugetlb)
            vma = TryMergeNeighbours(mm, vma);
        mapped = addr;
        if ((flags & MapFlags.Populate) != 0)
            Gup.MmPopulate(mm, addr, len);
        return Errno.None;
    }

    /// <summary>get_unmapped_area: the hint if it fits, else the highest gap below mmap_base (top-down).</summary>
    public static Errno GetUnmappedArea(MmStruct mm, ulong hint, ulong len, ulong align, bool fixedAddr, out ulong addr)
    {
        ulong taskSize = mm.Arch.TaskSize;
        addr = 0;
        if (len > taskSize)
            return Errno.ENOMEM;
        if (fixedAddr)
        {
            // get_unmapped_area's own checks after the arch returned the fixed address: the range first.
            if (hint > taskSize - len)
                return Errno.ENOMEM;
            if ((hint & (Arch.PageSize - 1)) != 0)
                return Errno.EINVAL;
            addr = hint;
            return Errno.None;
        }
        if (hint != 0)
        {
            // Callers pass round_hint_to_min's result: page-aligned, at least mmap_min_addr.
            hint &= Arch.PageMask;
            if (hint >= MmapMinAddr && hint <= taskSize - len && mm.Vmas.Range(hint, hint + len).Count == 0)
            {
                addr = hint;
                return Errno.None;
            }
        }
        // vm_unmapped_area top-down: walk the gaps from mmap_base down.
        ulong high = mm.MmapBase;
        var vmas = mm.Vmas.All;
        for (int i = vmas.Count; i >= 0; i--)
        {
            ulong gapEnd = i == vmas.Count ? high : Math.Min(high, vmas[i].Start);
            ulong gapStart = i == 0 ? MmapMinAddr : vmas[i - 1].End;
            if (gapEnd < gapStart || gapEnd - gapStart < len)
                continue;
            ulong candidate = (gapEnd - len) & ~(align - 1);
            if (candidate >= gapStart)
            {
                addr = candidate;
                return Errno.None;
            }
        }
        return Errno.ENOMEM;
    }

    /// <summary>do_vmi_munmap for [start, start+len).</summary>
    public static Errno DoMunmap(MmStruct mm, ulong start, ulong len)
    {
        ulong taskSize = mm.Arch.TaskSize;
        if ((start & (Arch.PageSize - 1)) != 0 || start > taskSize || len > taskSize - start)
            return Errno.EINVAL;
        len = (len + Arch.PageSize - 1) & Arch.PageMask;
        if (len == 0)
            return Errno.EINVAL;
        ulong end = start + len;
        var vmas = mm.Vmas.Range(start, end);
        if (vmas.Count == 0)
            return Errno.None;
        foreach (var v in vmas)
        {
            if (v.IsHugetlb && (start > v.Start && (start & (Arch.PmdSize - 1)) != 0 || end < v.End && (end & (Arch.PmdSize - 1)) != 0))
                return Errno.EINVAL;   // hugetlb_vm_op_split refuses a split inside a huge page
        }
        if (mm.Vmas.Count + 2 > MaxMapCount && vmas[0].Start < start && vmas[^1].End > end)
            return Errno.ENOMEM;
        if (vmas[0].Start < start)
            SplitVma(mm, vmas[0], start);
        var last = mm.Vmas.Lookup(end - 1);
        if (last is not null && last.End > end)
            SplitVma(mm, last, end);
        vmas = mm.Vmas.Range(start, end);
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Unmap, start, end, null);
        foreach (var v in vmas)
            Zap.ZapRange(v, v.Start, v.End);
        var prev = mm.Vmas.Prev(vmas[0]);
        var next = mm.Vmas.Next(vmas[^1]);
        foreach (var v in vmas)
            RemoveVma(mm, v);
        mm.FreePgdRange(start, end, prev?.End ?? 0, next?.Start ?? 0);
        return Errno.None;
    }

    /// <summary>remove_vma: out of the tree, off its file and its anon_vma chains.</summary>
    public static void RemoveVma(MmStruct mm, Vma vma)
    {
        mm.Vmas.Remove(vma);
        UnlinkVma(mm.Kernel, vma);
    }

    public static void UnlinkVma(KernelState kernel, Vma vma)
    {
        foreach (var av in vma.AnonVmaChain.ToArray())
            av.Unlink(vma);
        if (vma.File is { } file)
        {
            file.MmapRemove(vma);
            Shmem.FilePut(kernel, file);
        }
    }

    /// <summary>__split_vma: [Start, at) stays, [at, End) becomes a new VMA sharing file and anon_vma.
    /// A huge PMD straddling the split is split first (vma_adjust_trans_huge).</summary>
    public static Vma SplitVma(MmStruct mm, Vma vma, ulong at)
    {
        if (at <= vma.Start || at >= vma.End || (at & (Arch.PageSize - 1)) != 0)
            ThrowHelper.KernelBug($"split_vma of {vma} at 0x{at:x}");
        if ((at & (Arch.PmdSize - 1)) != 0 && !vma.IsHugetlb)
            SplitHugePmdAt(mm, vma, at);
        var tail = new Vma(mm, at, vma.End, vma.Flags, vma.PgOff + ((at - vma.Start) >> Arch.PageShift), vma.File) { Ops = vma.Ops };
        tail.AnonVma = vma.AnonVma;
        // vma_prepare: the tail is linked and the head shrunk under the anon_vma (or i_mmap) lock, so
        // an rmap walk sees either the whole VMA or both halves, never the head alone.
        var bounds = Rmap.VmaBoundsLock(vma);
        bounds?.Enter();
        try
        {
            foreach (var av in vma.AnonVmaChain.ToArray())
                av.Link(tail);
            if (tail.File is { } file)
            {
                file.MmapAdd(tail);
                Shmem.FileGet(file);
            }
            mm.Vmas.Remove(vma);
            vma.End = at;
        }
        finally
        {
            bounds?.Exit();
        }
        mm.Vmas.Insert(vma);
        mm.Vmas.Insert(tail);
        return tail;
    }

    /// <summary>split_huge_pmd_address: a THP mapped across <paramref name="addr"/> becomes PTE-mapped.</summary>
    public static void SplitHugePmdAt(MmStruct mm, Vma vma, ulong addr)
    {
        if (!mm.PmdTable(addr, alloc: false, out var pmdTable))
            return;
        ulong pmd = mm.PmdRef(pmdTable, addr);
        if (pmd != 0 && !mm.Arch.IsTable(pmd))
            HugeMemory.SplitHugePmd(vma, pmdTable, addr & ~(Arch.PmdSize - 1));
    }

    /// <summary>Whether two adjacent VMAs may become one (is_mergeable_vma + anon_vma compatibility).</summary>
    public static bool CanMerge(Vma a, Vma b) =>
        a.End == b.Start && a.Flags == b.Flags && a.File == b.File && a.Ops == b.Ops && !a.IsHugetlb
        && (a.File is null ? a.PgOff + (a.Length >> Arch.PageShift) == b.PgOff : a.PgOff + (a.Length >> Arch.PageShift) == b.PgOff)
        && (a.AnonVma is null || b.AnonVma is null || a.AnonVma == b.AnonVma && SameChain(a, b));

    private static bool SameChain(Vma a, Vma b) =>
        a.AnonVmaChain.Count == b.AnonVmaChain.Count && a.AnonVmaChain.All(b.AnonVmaChain.Contains);

    /// <summary>vma_merge: folds a VMA into its neighbours where the kernel would.</summary>
    public static Vma TryMergeNeighbours(MmStruct mm, Vma vma)
    {
        var prev = mm.Vmas.Prev(vma);
        if (prev is not null && CanMerge(prev, vma))
        {
            MergeInto(mm, prev, vma);
            vma = prev;
        }
        var next = mm.Vmas.Next(vma);
        if (next is not null && CanMerge(vma, next))
            MergeInto(mm, vma, next);
        return vma;
    }

    private static void MergeInto(MmStruct mm, Vma keep, Vma gone)
    {
        if (keep.AnonVma is null && gone.AnonVma is not null)
        {
            keep.AnonVma = gone.AnonVma;
            foreach (var av in gone.AnonVmaChain)
                if (!keep.AnonVmaChain.Contains(av))
                    av.Link(keep);
        }
        mm.Vmas.Remove(gone);
        mm.Vmas.Remove(keep);
        // vma_merge: the survivor grows over the other under the rmap lock before the other is unlinked.
        var bounds = Rmap.VmaBoundsLock(keep);
        bounds?.Enter();
        try
        {
            if (gone.Start < keep.Start)
            {
                keep.PgOff = gone.PgOff;
                keep.Start = gone.Start;
            }
            else
            {
                keep.End = gone.End;
            }
            UnlinkVma(mm.Kernel, gone);
        }
        finally
        {
            bounds?.Exit();
        }
        mm.Vmas.Insert(keep);
    }

    /// <summary>exit_mmap: unmap everything and free every page table.</summary>
    public static void ExitMmap(MmStruct mm)
    {
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Release, 0, ulong.MaxValue, null);
        foreach (var v in mm.Vmas.All.ToArray())
            Zap.ZapRange(v, v.Start, v.End);
        foreach (var v in mm.Vmas.All.ToArray())
            UnlinkVma(mm.Kernel, v);
        mm.Vmas.Clear();
        mm.FreeAllTables();
    }
}

internal static partial class MmapFile
{
    /// <summary>do_mmap of a character device: the generic checks, mmap_region's VMA, then the
    /// driver's f_op->mmap; when the driver fails, the region is unmapped again (mmap_region's
    /// unmap_and_free_vma path), so nothing it inserted is left behind.</summary>
    public static Errno DoMmapDevice(MmStruct mm, ulong addr, ulong len, Prot prot, MapFlags flags, ulong offset, FileOperations fops, out ulong mapped)
    {
        mapped = 0;
        if ((offset & (Arch.PageSize - 1)) != 0)
            return Errno.EINVAL;
        // ksys_mmap_pgoff: MAP_HUGETLB on a file that is not hugetlbfs. (MAP_ANONYMOUS never reaches a
        // device: the syscall layer maps anonymous memory instead.)
        if ((flags & (MapFlags.Anonymous | MapFlags.Hugetlb)) != 0)
            return Errno.EINVAL;
        if (len == 0)
            return Errno.EINVAL;
        if ((flags & MapFlags.FixedNoReplace) != 0)
            flags |= MapFlags.Fixed;
        if ((flags & MapFlags.Fixed) == 0)
            addr = Mmap.RoundHintToMin(addr);
        ulong alignedLen = (len + Arch.PageSize - 1) & Arch.PageMask;
        if (alignedLen == 0 || alignedLen < len)
            return Errno.ENOMEM;
        len = alignedLen;
        ulong pgoff = offset >> Arch.PageShift;
        if (pgoff + (len >> Arch.PageShift) < pgoff)
            return Errno.EOVERFLOW;
        var err = Mmap.GetUnmappedArea(mm, addr, len, Arch.PageSize, (flags & MapFlags.Fixed) != 0, out ulong start);
        if (err != Errno.None)
            return err;
        if ((flags & MapFlags.FixedNoReplace) != 0 && mm.Vmas.Range(start, start + len).Count > 0)
            return Errno.EEXIST;
        // file_mmap_ok: a character device's limit is ULONG_MAX.
        if (!Mmap.FileMmapOk(ulong.MaxValue, pgoff, len))
            return Errno.EOVERFLOW;
        var type = flags & Mmap.MapType;
        if (type == MapFlags.Shared)
            flags &= Mmap.LegacyMapMask;
        else if (type == Mmap.MapSharedValidate && (flags & ~Mmap.LegacyMapMask) != 0)
            return Errno.EOPNOTSUPP;   // dmirror's fops support no flag beyond the legacy ones
        else if (type != Mmap.MapSharedValidate && type != MapFlags.Private)
            return Errno.EINVAL;
        if ((flags & MapFlags.Fixed) != 0)
        {
            err = Mmap.DoMunmap(mm, start, len);
            if (err != Errno.None)
                return err;
        }
        // calc_vm_prot_bits drops prot bits it does not know, as do_mmap does.
        var vmFlags = Mmap.CalcVmProtBits(prot) | VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec;
        if (type != MapFlags.Private)
            vmFlags |= VmFlags.Shared | VmFlags.MayShare;
        var vma = new Vma(mm, start, start + len, vmFlags, pgoff, null);
        mm.Vmas.Insert(vma);
        err = fops.Mmap(vma);
        if (err != Errno.None)
        {
            Mmap.DoMunmap(mm, start, len);
            return err;
        }
        mapped = start;
        return Errno.None;
    }
}
