using HmmSim.Cli.Explore;

namespace HmmSim.Cli.Tests;

/// <summary>The delta debugger on injected predicates: it must find the failure-inducing elements.</summary>
public class ExploreShrinkerTests
{
    private static readonly int[] _hundred = Enumerable.Range(0, 100).ToArray();

    [Fact]
    public void FindsThePairOfElementsThatTogetherFail()
    {
        var result = Shrinker.Shrink(_hundred, c => c.Contains(17) && c.Contains(42), budget: 1000, out int runs);
        Assert.Equal([17, 42], result);
        Assert.True(runs < 200, $"{runs} runs for a 2-element failure in 100");
    }

    [Fact]
    public void KeepsOrderAndFindsASingleCause()
    {
        Assert.Equal([63], Shrinker.Shrink(_hundred, c => c.Contains(63), 1000, out _));
    }

    [Fact]
    public void AFailureNeedingNothingShrinksToEmpty()
    {
        Assert.Empty(Shrinker.Shrink(_hundred, _ => true, 1000, out int runs));
        Assert.Equal(1, runs);
    }

    [Fact]
    public void ResultIsOneMinimalForAnOrderDependentFailure()
    {
        // Fails when some 3 appears before some 7 (an order-dependent bug, as a sequence of ops has).
        static bool Fails(IReadOnlyList<int> c)
        {
            int i3 = c.ToList().IndexOf(3);
            return i3 >= 0 && c.Skip(i3).Contains(7);
        }
        var input = new[] { 7, 1, 3, 9, 3, 2, 7, 5 };
        var result = Shrinker.Shrink(input, Fails, 1000, out _);
        Assert.Equal([3, 7], result);
        for (int i = 0; i < result.Count; i++)
            Assert.False(Fails(result.Where((_, j) => j != i).ToList()));
    }

    [Fact]
    public void StopsAtTheBudgetWithAListThatStillFails()
    {
        var result = Shrinker.Shrink(_hundred, c => c.Contains(17) && c.Contains(42), budget: 3, out int runs);
        Assert.True(runs <= 3);
        Assert.Contains(17, result);
        Assert.Contains(42, result);
    }
}
