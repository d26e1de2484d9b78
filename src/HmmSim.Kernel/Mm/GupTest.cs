namespace HmmSim.Kernel;

/// <summary>The gup_test ioctl commands (mm/gup_test.h), with the kernel's ioctl numbers.
/// DUMP_USER_PAGES_TEST and the PIN_LONGTERM_TEST_* commands are not modelled.</summary>
internal enum GupTestCmd
{
    GupFastBenchmark = 1,
    PinFastBenchmark = 2,
    PinLongtermBenchmark = 3,
    GupBasicTest = 4,
    PinBasicTest = 5,
}

/// <summary>mm/gup_test.c: the debugfs file the GUP selftests and hmm-tests' hmm_gup_test drive. Each
/// ioctl runs one GUP flavour over a range, checks that pinned pages look pinned, and puts every
/// page back. The fast benchmarks take no mmap_lock (GUP-fast takes it only for its slow path).</summary>
internal static class GupTest
{
    /// <summary>__gup_test_ioctl: <paramref name="pinnedSize"/> is gup->size on return.</summary>
    public static Errno Ioctl(MmStruct mm, GupTestCmd cmd, ulong addr, ulong size, uint nrPagesPerCall, FollFlags gupFlags, out ulong pinnedSize)
    {
        pinnedSize = size;
        if (size == 0 || nrPagesPerCall == 0 || (size & (Arch.PageSize - 1)) != 0 || addr + size < addr)
            return Errno.EINVAL;
        if (cmd is not (GupTestCmd.GupFastBenchmark or GupTestCmd.PinFastBenchmark or GupTestCmd.PinLongtermBenchmark
            or GupTestCmd.GupBasicTest or GupTestCmd.PinBasicTest))
            return Errno.EINVAL;
        ulong end = addr + size;
        var pages = new Page[size >> Arch.PageShift];   // kvcalloc
        bool needsMmapLock = cmd is not (GupTestCmd.GupFastBenchmark or GupTestCmd.PinFastBenchmark);
        if (needsMmapLock)
            mm.MmapLock.EnterReadLock();
        try
        {
            int i = 0;
            long nr = nrPagesPerCall;
            for (ulong next; addr < end; addr = next)
            {
                if (nr != nrPagesPerCall)
                    break;
                nr = (long)Math.Min((ulong)nr, (end - addr) >> Arch.PageShift);
                next = addr + ((ulong)nr << Arch.PageShift);
                var slice = pages.AsSpan(i, (int)nr);
                nr = cmd switch
                {
                    GupTestCmd.GupFastBenchmark => Gup.GetUserPagesFast(mm, addr, slice, gupFlags),
                    GupTestCmd.GupBasicTest => Gup.GetUserPagesLocked(mm, addr, slice, gupFlags),
                    GupTestCmd.PinFastBenchmark => Gup.PinUserPagesFast(mm, addr, slice, gupFlags),
                    GupTestCmd.PinBasicTest => Gup.PinUserPagesLocked(mm, addr, slice, gupFlags),
                    _ => Gup.PinUserPagesLocked(mm, addr, slice, gupFlags | FollFlags.Longterm),
                };
                if (nr <= 0)
                    break;
                i += (int)nr;
            }
            pinnedSize = (ulong)i << Arch.PageShift;
            VerifyDmaPinned(mm.Kernel, cmd, pages.AsSpan(0, i));
            PutBackPages(cmd, pages.AsSpan(0, i));
        }
        finally
        {
            if (needsMmapLock)
                mm.MmapLock.ExitReadLock();
        }
        return Errno.None;
    }

    private static bool IsPin(GupTestCmd cmd) =>
        cmd is GupTestCmd.PinFastBenchmark or GupTestCmd.PinBasicTest or GupTestCmd.PinLongtermBenchmark;

    /// <summary>verify_dma_pinned: every page a pin command got must look pinned, and after
    /// PIN_LONGTERM_BENCHMARK be in memory that may be pinned long-term.</summary>
    private static void VerifyDmaPinned(KernelState kernel, GupTestCmd cmd, ReadOnlySpan<Page> pages)
    {
        if (!IsPin(cmd))
            return;
        for (int i = 0; i < pages.Length; i++)
        {
            var folio = pages[i].Folio;
            if (!Fork.FolioMaybeDmaPinned(folio))
            {
                VmWarn.Warn(kernel, $"gup_test: pages[{i}] is NOT dma-pinned ({folio})");
                break;
            }
            if (cmd == GupTestCmd.PinLongtermBenchmark && !Gup.FolioIsLongtermPinnable(folio))
            {
                VmWarn.Warn(kernel, $"gup_test: pages[{i}] is NOT pinnable but pinned ({folio})");
                break;
            }
        }
    }

    /// <summary>put_back_pages.</summary>
    private static void PutBackPages(GupTestCmd cmd, ReadOnlySpan<Page> pages)
    {
        foreach (var page in pages)
        {
            if (IsPin(cmd))
                Gup.UnpinUserPage(page);
            else
                Gup.PutPage(page);
        }
    }
}
