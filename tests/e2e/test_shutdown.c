/* placeholder: the e2e suite is being written */
typedef int e2e_placeholder;
