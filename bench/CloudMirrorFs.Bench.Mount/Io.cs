namespace CloudMirrorFs.Bench.Mount;

/// <summary>In-process file operations on a target, bounded in time so a hung mount is reported instead of hanging the bench.</summary>
internal static class Io
{
    public static async Task RunAsync(string what, Action action, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Run(action, CancellationToken.None).WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException e)
        {
            throw new BenchFailureException($"{what} did not return within {timeout.TotalSeconds:0} s (is the mount hung?)", e);
        }
        catch (IOException e)
        {
            throw new BenchFailureException($"{what}: {e.GetType().Name}: {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BenchFailureException($"{what}: {e.GetType().Name}: {e.Message}", e);
        }
    }
}
