using System.CommandLine;
using CloudMirrorFs.Host.Commands;
using CloudMirrorFs.Host.Config;

namespace CloudMirrorFs.Host;

/// <summary>
/// The <c>cmfs</c> command line. Exit codes: 0 success, 1 the operation failed or found a problem (message on
/// stderr), 2 usage or configuration error. Callable in-process (tests) with its own output writers and folder.
/// </summary>
public static class CmfsCli
{
    /// <summary>Exit code: success.</summary>
    public const int Ok = 0;

    /// <summary>Exit code: the operation failed or found a problem.</summary>
    public const int Failed = 1;

    /// <summary>Exit code: usage or configuration error.</summary>
    public const int UsageError = 2;

    /// <summary>Runs one command line.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, string workingDirectory, CancellationToken cancellationToken = default)
    {
        // s3 and azure facets: built by the cloud assembly, with secrets resolved from their references.
        Facets.FacetFactory.CloudStores ??= o => Cloud.CloudStores.Create(o, (value, key) => SecretReference.Resolve(value, key, workingDirectory));
        var context = new CommandContext(stdout, stderr, workingDirectory);
        var configOption = new Option<string?>("--config", "-c")
        {
            Description = "The volume's config file (default: ./cmfs.json, else the embedded default under ./.cmfs)",
            Recursive = true,
        };
        var root = new RootCommand("CloudMirrorFs: a drive mirrored synchronously to a local folder and asynchronously to remote facets");
        root.Options.Add(configOption);
        root.Subcommands.Add(InitCommand.Create(context, configOption));
        root.Subcommands.Add(StatusCommand.Create(context, configOption));
        root.Subcommands.Add(DrainCommand.Create(context, configOption));
        root.Subcommands.Add(RestoreCommand.Create(context, configOption));
        root.Subcommands.Add(MountCommand.Create(context, configOption));
        root.Subcommands.Add(ResyncCommand.Create(context, configOption));
        root.Subcommands.Add(VerifyCommand.Create(context, configOption));
        root.Subcommands.Add(FacetCommand.Create(context, configOption));

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                await stderr.WriteLineAsync($"cmfs: {error.Message}");
            }
            await stderr.WriteLineAsync("run 'cmfs --help' for the verbs and their options");
            return UsageError;
        }
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (ConfigException e)
        {
            await stderr.WriteLineAsync($"cmfs: config error: {e.Message}");
            return UsageError;
        }
        catch (MirrorException e)
        {
            await stderr.WriteLineAsync($"cmfs: {e.Message}");
            return Failed;
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync("cmfs: interrupted");
            return Failed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The OS refused a file of the volume's own (a state file on a full disk, a folder it may not write): its
            // message names the file; say what to do instead of a stack trace.
            string what = e.Message.TrimEnd('.', ' ');
            string hint = e is IOException io && MirrorException.IsNoSpace(io)
                ? "free space on that device (or move the volume's folders), then run the command again"
                : e is UnauthorizedAccessException ? "give this user access to that path, or run cmfs as the volume's owner" : "check that path and the disk it is on";
            await stderr.WriteLineAsync($"cmfs: {what}; {hint}");
            return Failed;
        }
    }
}
