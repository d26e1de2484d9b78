namespace HmmSim.Kernel;

/// <summary>mm/shmem.c: tmpfs page cache for <c>HmmSim.ShmemFile</c> and shared anonymous memory.
/// Folios are order 0 (shmem THP is off by default: shmem_enabled=never).</summary>
internal static class Shmem
{
    /// <summary>The model's s_maxbytes: folio->index holds 40 bits here, so a file ends at 2^52 bytes
    /// (tmpfs allows MAX_LFS_FILESIZE; see docs/fidelity.md).</summary>
    public const ulong MaxBytes = 1UL << (40 + Arch.PageShift);

    /// <summary>do_sys_ftruncate and inode_newsize_ok: a negative length is EINVAL, one past s_maxbytes EFBIG.</summary>
    public static Errno CheckNewSize(ulong size) =>
        size > long.MaxValue ? Errno.EINVAL : size > MaxBytes ? Errno.EFBIG : Errno.None;

    /// <summary>shmem_get_folio(SGP_CACHE): the folio at <paramref name="index"/>, allocated zeroed if
    /// absent, with a reference for the caller. SIGBUS beyond i_size.</summary>
    public static VmFaultResult GetFolio(KernelState kernel, AddressSpace mapping, ulong index, out Folio folio)
    {
        folio = default;
        if (index >= (mapping.Size + Arch.PageSize - 1) >> Arch.PageShift)
            return VmFaultResult.Sigbus;
        if (mapping.Get(index) is { } cached && cached.TryGet())
        {
            folio = cached;
            return VmFaultResult.None;
        }
        if (Memory.AllocUserFolio(kernel, 0) is not { } fresh)
            return VmFaultResult.Oom;
        fresh.SetFlag(PageFlags.SwapBacked | PageFlags.Uptodate);
        fresh.Mapping = mapping.Handle;
        fresh.PgIndex = index;
        var winner = mapping.AddOrGet(index, fresh);
        if (winner != fresh)
        {
            fresh.Mapping = 0;
            fresh.Put();
            winner.Get();
            folio = winner;
            return VmFaultResult.None;
        }
        // The page cache holds the allocation's reference; the caller gets one more.
        kernel.VmStat.Inc(VmStatItem.NrShmem);
        kernel.VmStat.Inc(VmStatItem.NrFilePages);
        fresh.Get();
        folio = fresh;
        return VmFaultResult.None;
    }

    /// <summary>shmem_truncate_range over the whole file: drop every cached folio not mapped anywhere.</summary>
    public static void Truncate(KernelState kernel, AddressSpace mapping)
    {
        foreach (var (index, folio) in mapping.Entries())
        {
            if (folio.Mapped)
                ThrowHelper.KernelBug($"truncating {folio} of a shmem file while it is still mapped");
            mapping.Remove(index, out _);
            folio.Mapping = 0;
            kernel.VmStat.Add(VmStatItem.NrShmem, -1);
            kernel.VmStat.Add(VmStatItem.NrFilePages, -1);
            folio.Put();
        }
    }

    /// <summary>get_file: a VMA or the open file holds the inode.</summary>
    public static void FileGet(AddressSpace mapping) => Interlocked.Increment(ref mapping.FileRefs);

    /// <summary>fput: the last reference to an unlinked tmpfs file frees its pages.</summary>
    public static void FilePut(KernelState kernel, AddressSpace mapping)
    {
        if (Interlocked.Decrement(ref mapping.FileRefs) != 0)
            return;
        if (mapping.IsHugetlb)
            kernel.Hugetlb.Truncate(mapping);
        else
            Truncate(kernel, mapping);
        kernel.Memmap.Mappings.Unregister(mapping.Handle);
    }

    /// <summary>shmem_zero_setup: MAP_SHARED|MAP_ANONYMOUS is backed by an unlinked /dev/zero shmem file.</summary>
    public static AddressSpace ZeroSetup(KernelState kernel, ulong size) => new(kernel.Memmap, size);
}
