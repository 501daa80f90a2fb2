// Starts GraphiQL against this server's /graphql. Every request needs a token: the headers
// editor is open with an Authorization header to fill in. It is not saved in the browser (an
// office computer may be shared); paste the token again in a new tab.
(function () {
  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: JSON.stringify({ Authorization: 'Bearer hw_...' }, null, 2),
      headerEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
      defaultQuery:
        '# Put your token in the Authorization header below, then run:\n' +
        '{\n  me { id displayName role }\n  tasks(first: 20) { edges { node { key title dueAt overdue } } }\n}\n',
    })
  );
})();
