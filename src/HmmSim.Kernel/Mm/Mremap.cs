namespace HmmSim.Kernel;

/// <summary>mm/mremap.c: shrink, grow in place, move (MAYMOVE, FIXED, DONTUNMAP) with the page
/// tables and their contents moved, not copied: rmap stays valid because vm_pgoff moves too.</summary>
internal static class Mremap
{
    public static Errno DoMremap(MmStruct mm, ulong addr, ulong oldLen, ulong newLen, MremapFlags flags, ulong newAddr, out ulong result)
    {
        result = 0;
        ulong taskSize = mm.Arch.TaskSize;
        if ((flags & ~(MremapFlags.MayMove | MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0)
            return Errno.EINVAL;
        if ((flags & MremapFlags.Fixed) != 0 && (flags & MremapFlags.MayMove) == 0)
            return Errno.EINVAL;
        if ((flags & MremapFlags.DontUnmap) != 0 && ((flags & MremapFlags.MayMove) == 0 || oldLen != newLen))
            return Errno.EINVAL;
        if ((addr & (Arch.PageSize - 1)) != 0)
            return Errno.EINVAL;
        oldLen = (oldLen + Arch.PageSize - 1) & Arch.PageMask;
        ulong aligned = (newLen + Arch.PageSize - 1) & Arch.PageMask;
        if (aligned == 0)
            return Errno.EINVAL;
        newLen = aligned;
        if ((flags & MremapFlags.Fixed) != 0 && (newAddr & (Arch.PageSize - 1)) != 0)
            return Errno.EINVAL;

        if ((flags & (MremapFlags.Fixed | MremapFlags.DontUnmap)) != 0)
            return MremapTo(mm, addr, oldLen, newAddr, newLen, flags, out result);

        // do_mremap looks the VMA up before any resize: shrinking or keeping the size of nothing is EFAULT.
        if (mm.Vmas.Lookup(addr) is null)
            return Errno.EFAULT;
        if (oldLen >= newLen)
        {
            if (oldLen > newLen)
            {
                var e = Mmap.DoMunmap(mm, addr + newLen, oldLen - newLen);
                if (e != Errno.None)
                    return e;
            }
            result = addr;
            return Errno.None;
        }
        var err = VmaToResize(mm, addr, oldLen, newLen, out var vma);
        if (err != Errno.None)
            return err;
        // Grow in place if the VMA ends where the old range does and the space after it is free.
        if (vma!.End == addr + oldLen && addr + newLen <= taskSize && addr + newLen > addr)
        {
            var next = mm.Vmas.Next(vma);
            if (next is null || next.Start >= addr + newLen)
            {
                mm.Vmas.Remove(vma);
                var bounds = Rmap.VmaBoundsLock(vma);   // vma_expand under the rmap lock
                bounds?.Enter();
                vma.End = addr + newLen;
                bounds?.Exit();
                mm.Vmas.Insert(vma);
                result = addr;
                return Errno.None;
            }
        }
        if ((flags & MremapFlags.MayMove) == 0)
            return Errno.ENOMEM;
        err = Mmap.GetUnmappedArea(mm, 0, newLen, vma.IsHugetlb ? Arch.PmdSize : ((addr | newLen) & (Arch.PmdSize - 1)) == 0 ? Arch.PmdSize : Arch.PageSize, false, out ulong target);
        if (err != Errno.None)
            return err;
        return MoveVma(mm, vma, addr, oldLen, newLen, target, dontUnmap: false, out result);
    }

    private static Errno MremapTo(MmStruct mm, ulong addr, ulong oldLen, ulong newAddr, ulong newLen, MremapFlags flags, out ulong result)
    {
        result = 0;
        bool fixedTarget = (flags & MremapFlags.Fixed) != 0;
        if (fixedTarget)
        {
            if (newAddr > mm.Arch.TaskSize - newLen)
                return Errno.EINVAL;
            if (addr + oldLen > newAddr && newAddr + newLen > addr)
                return Errno.EINVAL;   // overlapping ranges
        }
        var err = VmaToResize(mm, addr, oldLen, newLen, out var vma);
        if (err != Errno.None)
            return err;
        // MREMAP_DONTUNMAP would expand the mapping in a new way: refused where VM_DONTEXPAND (hugetlb,
        // special mappings) or VM_PFNMAP says the mapping must not grow.
        if ((flags & MremapFlags.DontUnmap) != 0 && (vma!.Flags & (VmFlags.DontExpand | VmFlags.PfnMap)) != 0)
            return Errno.EINVAL;
        if (fixedTarget)
        {
            err = Mmap.DoMunmap(mm, newAddr, newLen);
            if (err != Errno.None)
                return err;
        }
        if (oldLen > newLen)
        {
            err = Mmap.DoMunmap(mm, addr + newLen, oldLen - newLen);
            if (err != Errno.None)
                return err;
            oldLen = newLen;
        }
        vma = mm.Vmas.Lookup(addr)!;
        if (!fixedTarget)
        {
            err = Mmap.GetUnmappedArea(mm, 0, newLen, Arch.PageSize, false, out newAddr);
            if (err != Errno.None)
                return err;
        }
        return MoveVma(mm, vma, addr, oldLen, newLen, newAddr, (flags & MremapFlags.DontUnmap) != 0, out result);
    }

    /// <summary>vma_to_resize: the VMA must cover the whole old range.</summary>
    private static Errno VmaToResize(MmStruct mm, ulong addr, ulong oldLen, ulong newLen, out Vma? vma)
    {
        vma = mm.Vmas.Lookup(addr);
        if (vma is null)
            return Errno.EFAULT;
        // old_len 0 asks for a duplicate of the mapping, which only makes sense for shared memory.
        if (oldLen == 0 && (vma.Flags & (VmFlags.Shared | VmFlags.MayShare)) == 0)
            return Errno.EINVAL;
        if (oldLen > vma.End - addr)
            return Errno.EFAULT;
        if (oldLen == newLen)
            return Errno.None;
        if (vma.IsHugetlb)
            return Errno.EINVAL;
        if (newLen > oldLen && (vma.Flags & (VmFlags.DontExpand | VmFlags.PfnMap)) != 0)
            return Errno.EFAULT;
        return Errno.None;
    }

    /// <summary>move_vma: a new VMA at the target (copy_vma), the page tables moved across, the old range unmapped
    /// (or, with DONTUNMAP, left mapped and empty).</summary>
    private static Errno MoveVma(MmStruct mm, Vma vma, ulong oldAddr, ulong oldLen, ulong newLen, ulong newAddr, bool dontUnmap, out ulong result)
    {
        result = 0;
        if (oldLen == 0)
        {
            // mremap(addr, 0, len, MAYMOVE) of a shared mapping: a second mapping of the same pages at
            // the new address; nothing is moved or unmapped.
            var dup = new Vma(mm, newAddr, newAddr + newLen, vma.Flags, vma.PgOff + ((oldAddr - vma.Start) >> Arch.PageShift), vma.File) { Ops = vma.Ops };
            if (dup.File is { } f)
            {
                f.MmapAdd(dup);
                Shmem.FileGet(f);
            }
            mm.Vmas.Insert(dup);
            result = newAddr;
            return Errno.None;
        }
        if (oldAddr > vma.Start)
            vma = Mmap.SplitVma(mm, vma, oldAddr);
        if (oldAddr + oldLen < vma.End)
            Mmap.SplitVma(mm, vma, oldAddr + oldLen);
        ulong pgoff = vma.PgOff;
        var target = new Vma(mm, newAddr, newAddr + newLen, vma.Flags, pgoff, vma.File) { Ops = vma.Ops };
        target.AnonVma = vma.AnonVma;
        foreach (var av in vma.AnonVmaChain.ToArray())
            av.Link(target);
        if (target.File is { } file)
        {
            file.MmapAdd(target);
            Shmem.FileGet(file);
        }
        mm.Vmas.Insert(target);
        MovePageTables(vma, oldAddr, target, newAddr, oldLen);
        if (dontUnmap)
        {
            // The source stays mapped with empty tables; its pages now belong to the target.
            if (vma.IsAnonymous && !vma.IsShared)
            {
                foreach (var av in vma.AnonVmaChain.ToArray())
                    av.Unlink(vma);
                vma.AnonVma = null;
            }
        }
        else
        {
            var err = Mmap.DoMunmap(mm, oldAddr, oldLen);
            if (err != Errno.None)
                return err;
        }
        Mmap.TryMergeNeighbours(mm, target);
        result = newAddr;
        return Errno.None;
    }

    /// <summary>move_page_tables: huge PMDs move whole, PTEs one by one; mapcounts and rmap are unchanged.</summary>
    private static void MovePageTables(Vma vma, ulong oldAddr, Vma newVma, ulong newAddr, ulong len)
    {
        var mm = vma.Mm;
        var arch = mm.Arch;
        MmuNotifier.InvalidateRange(mm, MmuNotifyEvent.Unmap, oldAddr, oldAddr + len, null);
        for (ulong off = 0, step; off < len; off += step)
        {
            ulong old = oldAddr + off, nw = newAddr + off;
            step = Math.Min(len - off, Arch.PmdSize - (old & (Arch.PmdSize - 1)));
            step = Math.Min(step, Arch.PmdSize - (nw & (Arch.PmdSize - 1)));
            if (!mm.PmdTable(old, alloc: false, out var oldPmdT))
                continue;
            ulong pmd = mm.PmdRef(oldPmdT, old);
            if (pmd == 0)
                continue;
            if (!arch.IsTable(pmd))
            {
                bool whole = (old & (Arch.PmdSize - 1)) == 0 && (nw & (Arch.PmdSize - 1)) == 0 && step == Arch.PmdSize;
                if (whole)
                {
                    if (!mm.PmdTable(nw, alloc: true, out var newPmdT))
                        ThrowHelper.KernelBug("mremap: out of memory for page tables");
                    lock (mm.PageTableLock)
                    {
                        mm.PmdRef(newPmdT, nw) = mm.PmdRef(oldPmdT, old);
                        mm.PmdRef(oldPmdT, old) = 0;
                    }
                    continue;
                }
                HugeMemory.SplitHugePmd(vma, oldPmdT, old & ~(Arch.PmdSize - 1));
            }
            if (!mm.PteTable(oldPmdT, old, alloc: false, out var oldPteT))
                continue;
            Pfn newPteT = default;
            if (!mm.PmdTable(nw, alloc: true, out var nPmdT) || !mm.PteTable(nPmdT, nw, alloc: true, out newPteT))
                ThrowHelper.KernelBug("mremap: out of memory for page tables (or a huge PMD at the target)");
            lock (mm.PageTableLock)
            {
                for (ulong a = 0; a < step; a += Arch.PageSize)
                {
                    ref ulong src = ref mm.PteRef(oldPteT, old + a);
                    if (src == 0)
                        continue;
                    mm.PteRef(newPteT, nw + a) = src;
                    src = 0;
                }
            }
        }
    }
}
