namespace HmmSim.Kernel.Tests.Hmm;

/// <summary>hmm_vma_walk_pmd's PTE-table loop: the common entries (none, present) are reported by a
/// lockless loop over the table's words, the rest (device-private, zero page, protnone...) one by one;
/// tables entered part-way (a VMA boundary or the range's ends inside a PMD) are sliced at the right
/// entry. Each page's report is checked against the PTE itself.</summary>
public class RangeFaultTableWalkTests
{
    private const ulong Page = 4096;
    private const ulong Pmd = 2UL << 20;

    /// <summary>Both designs on both page-table formats: the walk works out an entry's flags once per
    /// distinct flag bits through the Arch seam, so each format's PFN field must be told apart from its flags.</summary>
    public static TheoryData<HmmSim.DevicePrivateDesign, HmmSim.Architecture> Machines => new()
    {
        { HmmSim.DevicePrivateDesign.PhysicalAddressSpace, HmmSim.Architecture.X86_64 },
        { HmmSim.DevicePrivateDesign.DeviceAddressSpace, HmmSim.Architecture.X86_64 },
        { HmmSim.DevicePrivateDesign.PhysicalAddressSpace, HmmSim.Architecture.Arm64 },
        { HmmSim.DevicePrivateDesign.DeviceAddressSpace, HmmSim.Architecture.Arm64 },
    };

    private enum Kind { None, ZeroPage, Written, OnDevice }

    /// <summary>The kind of page <paramref name="i"/> of the range: a mix in every table.</summary>
    private static Kind KindOf(int i) => (i % 7) switch
    {
        0 => Kind.None,
        1 => Kind.ZeroPage,
        5 => Kind.OnDevice,
        _ => Kind.Written,
    };

    private static Errno Fault(Machine m, Process p, ulong start, ulong[] pfns, ulong defaultFlags)
    {
        var mm = p.Mm;
        ulong size = (ulong)pfns.Length * Page;
        var notifier = MmuNotifier.MmuIntervalNotifierInsert(mm, start, size, (_, _, _) => true);
        var range = new HmmRange
        {
            Notifier = notifier,
            HmmPfns = pfns,
            Start = start,
            End = start + size,
            DefaultFlags = defaultFlags,
            DevPrivateOwner = m.Kernel.Pci.Endpoints[0].Driver!,
        };
        Errno err;
        do
        {
            range.NotifierSeq = notifier.ReadBegin();
            mm.MmapLock.EnterReadLock();
            err = RangeFault.HmmRangeFault(mm, range);
            mm.MmapLock.ExitReadLock();
        }
        while (err == Errno.EBUSY);
        MmuNotifier.MmuIntervalNotifierRemove(notifier);
        return err;
    }

    /// <summary>The PTE mapping <paramref name="addr"/>, read from its table.</summary>
    private static ulong PteOf(Process p, ulong addr)
    {
        Assert.True(p.Mm.WalkToPte(addr, out var table));
        return p.Mm.Table(table)[MmStruct.PteIndex(addr)];
    }

    [Theory]
    [MemberData(nameof(Machines))]
    public void EveryEntryKindInPartlyWalkedTablesIsReportedAsItsPteSays(HmmSim.DevicePrivateDesign design, HmmSim.Architecture architecture)
    {
        using var m = new Machine(new MachineConfig { CheckInvariants = false, DevicePrivateDesign = design, Architecture = architecture });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        var arch = m.Kernel.Arch;
        Assert.Equal(HmmSim.Errno.None, p.Mmap(0, 4 * Pmd, HmmSim.Prot.Read | HmmSim.Prot.Write, HmmSim.MapFlags.Private | HmmSim.MapFlags.Anonymous, out ulong map));
        Assert.Equal(HmmSim.Errno.None, p.Madvise(map, 4 * Pmd, HmmSim.Advice.NoHugePage));
        ulong aligned = (map + Pmd - 1) & ~(Pmd - 1);
        // Starts 100 pages into one table, ends 50 pages before the end of the next but one.
        ulong start = aligned + 100 * Page, end = aligned + 3 * Pmd - 50 * Page;
        int n = (int)((end - start) / Page);
        for (int i = 0; i < n; i++)
        {
            ulong a = start + (ulong)i * Page;
            switch (KindOf(i))
            {
                case Kind.ZeroPage:
                    Assert.Equal(0, p.ReadInt32(a));
                    break;
                case Kind.Written:
                case Kind.OnDevice:
                    p.WriteInt32(a, i + 1);
                    break;
            }
        }
        for (int i = 0; i < n; i++)
            if (KindOf(i) == Kind.OnDevice)
                Assert.Equal(HmmSim.Errno.None, dev.MigrateToDevice(start + (ulong)i * Page, 1, new byte[Page]).Error);
        // A read-only VMA in the middle of the second table: the walk enters that table three times.
        ulong roStart = aligned + Pmd + 200 * Page, roEnd = roStart + 16 * Page;
        Assert.Equal(HmmSim.Errno.None, p.Mprotect(roStart, roEnd - roStart, HmmSim.Prot.Read));

        var pfns = new ulong[n];
        Array.Fill(pfns, HmmPfn.DmaMapped);   // an in/out flag the walk keeps
        Assert.Equal(Errno.None, Fault(m, p, start, pfns, 0));
        for (int i = 0; i < n; i++)
        {
            ulong a = start + (ulong)i * Page;
            bool ro = a >= roStart && a < roEnd;
            ulong e = pfns[i];
            Assert.Equal(HmmPfn.DmaMapped, e & HmmPfn.DmaMapped);
            e &= ~HmmPfn.DmaMapped;
            switch (KindOf(i))
            {
                case Kind.None:
                    Assert.Equal(0UL, e);
                    break;
                case Kind.ZeroPage:
                    Assert.Equal(HmmPfn.Valid | m.Kernel.ZeroPfn.Value, e);
                    break;
                case Kind.Written:
                    Assert.Equal(HmmPfn.Valid | (ro ? 0 : HmmPfn.Write) | arch.PtePfn(PteOf(p, a)).Value, e);
                    break;
                case Kind.OnDevice:
                    Assert.False(arch.PtePresent(PteOf(p, a)));
                    Assert.Equal(HmmPfn.Valid | (ro ? 0 : HmmPfn.Write), e & (HmmPfn.Valid | HmmPfn.Write | HmmPfn.Error));
                    Assert.True(HmmPfn.ToPage(m.Kernel, e).IsDevicePrivate);
                    break;
            }
        }

        // Asking for a fault: an empty entry is faulted in (read: the zero page) together with the rest of
        // its PMD's part of the range, as hmm_vma_fault does, which brings the owner's device pages there
        // back to RAM; every page is then valid and reported as its PTE now says.
        var faulted = new ulong[n];
        Assert.Equal(Errno.None, Fault(m, p, start, faulted, HmmPfn.ReqFault));
        for (int i = 0; i < n; i++)
        {
            ulong a = start + (ulong)i * Page, pte = PteOf(p, a), e = faulted[i];
            bool ro = a >= roStart && a < roEnd;
            if (KindOf(i) is Kind.Written or Kind.ZeroPage)
                Assert.Equal(pfns[i] & ~HmmPfn.DmaMapped, e);
            else if (KindOf(i) == Kind.None)
                Assert.Equal(HmmPfn.Valid | m.Kernel.ZeroPfn.Value, e);
            else if (arch.PtePresent(pte))
                Assert.Equal(HmmPfn.Valid | (ro ? 0 : HmmPfn.Write) | arch.PtePfn(pte).Value, e);
            else
                Assert.Equal(pfns[i] & ~HmmPfn.DmaMapped, e);
        }

        // A write fault asked over the read-only VMA is refused; elsewhere it breaks the zero page.
        Assert.Equal(Errno.EPERM, Fault(m, p, roStart, new ulong[16], HmmPfn.ReqFault | HmmPfn.ReqWrite));
        var written = new ulong[100];
        Assert.Equal(Errno.None, Fault(m, p, start, written, HmmPfn.ReqFault | HmmPfn.ReqWrite));
        for (int i = 0; i < written.Length; i++)
        {
            Assert.Equal(HmmPfn.Valid | HmmPfn.Write, written[i] & (HmmPfn.Valid | HmmPfn.Write));
            Assert.NotEqual(m.Kernel.ZeroPfn.Value, written[i] & ~HmmPfn.Flags);
        }
    }
}
