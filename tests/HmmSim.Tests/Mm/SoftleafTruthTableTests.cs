namespace HmmSim.Tests.Mm;

/// <summary>For every entry type in both designs, the value the kernel's definitions give each
/// softleaf predicate, written out by hand from leafops.h and the series (not computed).</summary>
public class SoftleafTruthTableTests
{
    private const DevicePrivateDesign Legacy = DevicePrivateDesign.PhysicalAddressSpace;
    private const DevicePrivateDesign Redesign = DevicePrivateDesign.DeviceAddressSpace;

    private static readonly string[] _columns =
    [
        "None", "Swap", "Migration", "MigrationRead", "MigrationReadExclusive", "MigrationWrite",
        "DevicePrivate", "DevicePrivateWrite", "DeviceExclusive",
        "MigrationDevicePrivate", "MigrationDevicePrivateRead", "MigrationDevicePrivateReadExclusive", "MigrationDevicePrivateWrite",
        "Hwpoison", "Marker", "HasPfn", "ValidPmdEntry",
    ];

    //                                      N S M R E W D d X m r e w H K P V
    private const string SwapRow = "0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
    private const string HwpRow = "0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 1 0";
    private const string MigRRow = "0 0 1 1 0 0 0 0 0 0 0 0 0 0 0 1 1";
    private const string MigERow = "0 0 1 0 1 0 0 0 0 0 0 0 0 0 0 1 1";
    private const string MigWRow = "0 0 1 0 0 1 0 0 0 0 0 0 0 0 0 1 1";
    private const string DevWRow = "0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 1 1";
    private const string DevRRow = "0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 1 1";
    private const string DevXRow = "0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 1 0";
    private const string MdRRow = "0 0 1 1 0 0 0 0 0 1 1 0 0 0 0 1 1";
    private const string MdERow = "0 0 1 0 1 0 0 0 0 1 0 1 0 0 0 1 1";
    private const string MdWRow = "0 0 1 0 0 1 0 0 0 1 0 0 1 0 0 1 1";
    private const string MarkRow = "0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0";

    public static TheoryData<DevicePrivateDesign, uint, int, string> Rows() => new()
    {
        { Legacy, 0, (int)SoftleafType.Swap, SwapRow },
        { Legacy, 23, (int)SoftleafType.Swap, SwapRow },
        { Legacy, 24, (int)SoftleafType.Hwpoison, HwpRow },
        { Legacy, 25, (int)SoftleafType.MigrationRead, MigRRow },
        { Legacy, 26, (int)SoftleafType.MigrationReadExclusive, MigERow },
        { Legacy, 27, (int)SoftleafType.MigrationWrite, MigWRow },
        { Legacy, 28, (int)SoftleafType.DevicePrivateWrite, DevWRow },
        { Legacy, 29, (int)SoftleafType.DevicePrivateRead, DevRRow },
        { Legacy, 30, (int)SoftleafType.DeviceExclusive, DevXRow },
        { Legacy, 31, (int)SoftleafType.Marker, MarkRow },
        { Redesign, 0, (int)SoftleafType.Swap, SwapRow },
        { Redesign, 20, (int)SoftleafType.Swap, SwapRow },
        { Redesign, 21, (int)SoftleafType.Hwpoison, HwpRow },
        { Redesign, 22, (int)SoftleafType.MigrationRead, MigRRow },
        { Redesign, 23, (int)SoftleafType.MigrationReadExclusive, MigERow },
        { Redesign, 24, (int)SoftleafType.MigrationWrite, MigWRow },
        { Redesign, 25, (int)SoftleafType.DevicePrivateWrite, DevWRow },
        { Redesign, 26, (int)SoftleafType.DevicePrivateRead, DevRRow },
        { Redesign, 27, (int)SoftleafType.DeviceExclusive, DevXRow },
        { Redesign, 28, (int)SoftleafType.MigrationDevicePrivateRead, MdRRow },
        { Redesign, 29, (int)SoftleafType.MigrationDevicePrivateReadExclusive, MdERow },
        { Redesign, 30, (int)SoftleafType.MigrationDevicePrivateWrite, MdWRow },
        { Redesign, 31, (int)SoftleafType.Marker, MarkRow },
    };

    private static bool[] Actual(Swapops s, SwapEntry e) =>
    [
        Swapops.SoftleafIsNone(e), s.SoftleafIsSwap(e), s.SoftleafIsMigration(e), s.SoftleafIsMigrationRead(e),
        s.SoftleafIsMigrationReadExclusive(e), s.SoftleafIsMigrationWrite(e),
        s.SoftleafIsDevicePrivate(e), s.SoftleafIsDevicePrivateWrite(e), s.SoftleafIsDeviceExclusive(e),
        s.SoftleafIsMigrationDevicePrivate(e), s.SoftleafIsMigrationDevicePrivateRead(e),
        s.SoftleafIsMigrationDevicePrivateReadExclusive(e), s.SoftleafIsMigrationDevicePrivateWrite(e),
        s.SoftleafIsHwpoison(e), s.SoftleafIsMarker(e), s.SoftleafHasPfn(e), s.SoftleafIsValidPmdEntry(e),
    ];

    [Theory]
    [MemberData(nameof(Rows))]
    public void EveryPredicateAgreesWithTheKernelDefinition(DevicePrivateDesign design, uint type, int expectedType, string row)
    {
        var s = SwapopsTestKernels.Swapops(design);
        var e = SwapEntry.Make(type, 1);
        bool[] expected = row.Split(' ').Select(b => b == "1").ToArray();
        bool[] actual = Actual(s, e);
        var wrong = Enumerable.Range(0, _columns.Length).Where(i => expected[i] != actual[i]).Select(i => $"{_columns[i]}={actual[i]}");
        Assert.Equal((SoftleafType)expectedType, s.SoftleafType(e));
        Assert.Empty(wrong);
    }

    [Theory]
    [InlineData(Legacy)]
    [InlineData(Redesign)]
    public void TheZeroEntryIsNoneAndNothingElse(DevicePrivateDesign design)
    {
        var s = SwapopsTestKernels.Swapops(design);
        bool[] actual = Actual(s, default);
        Assert.Equal(SoftleafType.None, s.SoftleafType(default));
        Assert.True(actual[0]);
        Assert.All(actual.Skip(1), Assert.False);
    }

    [Fact]
    public void MigrationReadAcceptsTheDevicePrivateReadVariantAsSeed001Requires()
    {
        var s = SwapopsTestKernels.Swapops(Redesign);
        var e = s.MakeReadableMigrationDevicePrivateEntry(5);
        Assert.True(s.SoftleafIsMigrationRead(e));
        Assert.False(s.SoftleafIsMigrationRead(s.MakeReadableExclusiveMigrationDevicePrivateEntry(5)));
    }

    [Theory]
    [InlineData(Architecture.X86_64)]
    [InlineData(Architecture.Arm64)]
    public void PresentAndNonePtesGiveTheNoneLeaf(Architecture arch)
    {
        var s = SwapopsTestKernels.Swapops(Redesign, arch);
        ulong present = s.Arch.PfnPte(new Pfn(0x10), s.Arch.VmGetPageProt(VmFlags.Read));
        ulong protNone = s.Arch.PfnPte(new Pfn(0x10), s.Arch.VmGetPageProt(VmFlags.None));
        Assert.True(Swapops.SoftleafIsNone(s.SoftleafFromPte(0)));
        Assert.True(Swapops.SoftleafIsNone(s.SoftleafFromPte(present)));
        Assert.True(Swapops.SoftleafIsNone(s.SoftleafFromPte(protNone)));
        Assert.True(Swapops.SoftleafIsNone(s.SoftleafFromPmd(s.Arch.PfnPmd(new Pfn(0x200), s.Arch.VmGetPageProt(VmFlags.Read)))));
    }

    [Theory]
    [InlineData(Architecture.X86_64)]
    [InlineData(Architecture.Arm64)]
    public void SoftleafFromPteStripsSoftwareBits(Architecture arch)
    {
        var s = SwapopsTestKernels.Swapops(Redesign, arch);
        var e = s.MakeWritableMigrationDevicePrivateEntry(0x42);
        ulong pte = s.Arch.PteSwpMkuffdWp(s.Arch.PteSwpMkexclusive(s.SoftleafToPte(e)));
        Assert.Equal(e, s.SoftleafFromPte(pte));
        Assert.True(s.PmdIsValidSoftleaf(s.SoftleafToPmd(e)));
        Assert.True(s.PmdIsMigrationEntry(s.SoftleafToPmd(e)));
    }
}
